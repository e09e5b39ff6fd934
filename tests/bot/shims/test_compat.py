"""The shims' one check (bot/shims/compat.py): what it tells apart, that every shim is declared
in the one list (`bot.shims.ALL`) and passes it on the locked releases, and that `DAKA_SHIMS=off`
runs every stock path."""

from __future__ import annotations

import ast

import pytest

import bot.shims
import bot.shims.compat
from bot.shims import sqlite
from bot.shims.compat import SHIMS, Shim
from tests.child import ROOT, run_python

pytestmark = pytest.mark.slow  # fresh Python processes: run with -m slow (CI does)

ALL = {shim.name for shim in bot.shims.ALL}
PACKAGES = ("bot", "handlers", "scheduler", "storage", "domain", "bench")


def declarations() -> list[str]:
    """Where Daka's code (not its tests) makes a `Shim`, one entry per call, as file paths."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and (
                    (isinstance(node.func, ast.Name) and node.func.id == "Shim")
                    or (isinstance(node.func, ast.Attribute) and node.func.attr == "Shim")
                ):
                    found.append(path.relative_to(ROOT).as_posix())
    return found


def test_every_shim_declared_anywhere_is_in_the_one_list() -> None:
    """A shim is one module of bot/shims/ holding its code and its one `SHIM`, and is in
    `bot.shims.ALL`, which docs/shims.md describes: none made anywhere else, none left out."""
    modules = {
        f"bot/shims/{name}.py": module
        for name, module in vars(bot.shims).items()
        if getattr(module, "SHIM", None) is not None
    }
    assert sorted(declarations()) == sorted(modules)
    assert len(ALL) == len(bot.shims.ALL) == len(modules)
    assert {module.SHIM.name for module in modules.values()} == ALL
    assert all(module.SHIM in bot.shims.ALL for module in modules.values())
    assert all(shim.buys for shim in bot.shims.ALL)
    page = (ROOT / "docs" / "shims.md").read_text(encoding="utf-8")
    assert [shim.name for shim in bot.shims.ALL if f"## {shim.name}" not in page] == []


def test_every_shim_runs_on_the_locked_releases() -> None:
    """Fails when a dependency upgrade (a new lock) would silently turn a shim off, naming
    the shim and why: refresh the shim (docs/shims.md) or let it step aside."""
    assert {shim.name for shim in SHIMS} == ALL
    assert {shim.name: shim.check() for shim in bot.shims.ALL} == dict.fromkeys(ALL)


def test_the_check_names_what_does_not_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_probe() -> list[str]:
        raise TypeError("unexpected keyword")

    monkeypatch.setattr(bot.shims.compat, "SHIMS", [])  # these are no shims of Daka's
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
    assert sqlite.SHIM.check() == "DAKA_SHIMS=off"


def test_the_switch_runs_every_stock_path_and_says_so() -> None:
    done = run_python(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        import asyncio, gc, io, tempfile
        import bot, aiogram.types
        from openpyxl import load_workbook
        from sqlalchemy import text
        from bot.shims.lazy_aiogram import LAZY
        from bot.shims.heap import settle_heap
        from storage.db import create_engine
        from domain.present.sheets import write_xlsx

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
              gc.get_freeze_count(), book["Detail"]["A2"].value)
        """,
        DAKA_SHIMS="off",
    )
    assert done.stdout.split() == [
        "False",
        "True",
        "sqlite",
        "AsyncAdapt_aiosqlite_dbapi",
        "0",
        "x",
    ]
    lines = [line for line in done.stderr.splitlines() if "steps aside" in line]
    assert sorted(line.split(" steps aside")[0] for line in lines) == sorted(ALL)
    assert all(line.endswith("the stock path runs: DAKA_SHIMS=off") for line in lines)
