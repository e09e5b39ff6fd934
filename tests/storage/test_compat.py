"""The shims' one check (storage/compat.py): what it tells apart, that every shim passes it on
the locked releases, and that `DAKA_SHIMS=off` runs every stock path."""

from __future__ import annotations

import pytest

import bot.app
import handlers.telegram._aiogram_lazy
import storage.compat
import storage.sheets
import storage.sqlite
from storage.compat import SHIMS, Shim
from tests.child import run_python

ALL = {
    handlers.telegram._aiogram_lazy.SHIM.name,
    bot.app.INLINE_FILTERS.name,
    bot.app.HEAP.name,
    storage.sheets.SPLICE.name,
    storage.sqlite.SHIM.name,
}


def test_every_shim_runs_on_the_locked_releases() -> None:
    """Fails when a dependency upgrade (a new lock) would silently turn a shim off, naming
    the shim and why: refresh the shim (docs/upgrading.md) or let it step aside."""
    assert {shim.name for shim in SHIMS} == ALL
    assert {shim.name: shim.check() for shim in SHIMS} == dict.fromkeys(ALL)


def test_the_check_names_what_does_not_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_probe() -> list[str]:
        raise TypeError("unexpected keyword")

    monkeypatch.setattr(storage.compat, "SHIMS", [])  # these are no shims of Daka's
    other = Shim("a", written_for={"sqlalchemy": "2.0"})
    missing = Shim("b", written_for={}, names=("sqlalchemy.util:gone", "nowhere:x"))
    probed = Shim("c", written_for={"sqlalchemy": "2"}, probe=broken_probe)
    absent = Shim("d", written_for={"no-such-distribution": "1.0"})
    assert (other.check() or "").endswith(" is not the 2.0.x it was written for")
    assert missing.check() == "sqlalchemy.util:gone is missing; nowhere:x is missing"
    assert probed.check() == "its probe failed (TypeError: unexpected keyword)"
    assert absent.check() == "no-such-distribution is not installed"
    assert Shim("e", written_for={"sqlalchemy": "2.1"}, names=("sqlalchemy:text",)).check() is None
    monkeypatch.setenv("DAKA_SHIMS", "off")
    assert storage.sqlite.SHIM.check() == "DAKA_SHIMS=off"


def test_the_switch_runs_every_stock_path_and_says_so() -> None:
    done = run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        import asyncio, gc, io, tempfile
        import bot, aiogram.types
        from aiogram import Dispatcher
        from openpyxl import load_workbook
        from sqlalchemy import text
        from handlers.telegram._aiogram_lazy import LAZY
        from bot.app import inline_sync_filters, settle_heap
        from storage.db import create_engine
        from storage.sheets import write_xlsx

        async def query() -> object:
            engine = create_engine(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/t.db")
            async with engine.connect() as conn:
                answer = (await conn.execute(text("SELECT 'sqlite'"))).scalar_one()
            kind = type(engine.dialect.dbapi).__name__
            await engine.dispose()
            return answer, kind

        settle_heap()
        book = load_workbook(io.BytesIO(write_xlsx(["a"], [["x"]], [])))
        print(LAZY, aiogram.types.Sticker.__pydantic_complete__, *asyncio.run(query()),
              inline_sync_filters(Dispatcher()), gc.get_freeze_count(), book["Detail"]["A2"].value)
        """,
        DAKA_SHIMS="off",
    )
    assert done.stdout.split() == [
        "False",
        "True",
        "sqlite",
        "AsyncAdapt_aiosqlite_dbapi",
        "0",
        "0",
        "x",
    ]
    lines = [line for line in done.stderr.splitlines() if "steps aside" in line]
    assert sorted(line.split(" steps aside")[0] for line in lines) == sorted(ALL)
    assert all(line.endswith("the stock path runs: DAKA_SHIMS=off") for line in lines)
