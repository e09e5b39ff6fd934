"""The one-trip aiosqlite adapter (bot/shims/one_trip.py), which `import bot` installs in
`storage.db`: same results as SQLAlchemy's own, one thread trip each."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.shims.one_trip import OneTripDBAPI
from bot.shims.sqlite import one_trip_module
from storage.db import create_engine
from tests.child import PRETEND_RELEASES, run_python

pytestmark = pytest.mark.slow  # fresh Python processes: run with -m slow (CI does)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


def test_the_installed_aiosqlite_has_what_the_adapter_needs(tmp_path: Path) -> None:
    """If an aiosqlite upgrade removes its private `_execute` or `_conn`, Daka silently falls
    back to the stock adapter (four trips per statement): this test says so."""
    assert isinstance(one_trip_module(), OneTripDBAPI)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert isinstance(engine.dialect.dbapi, OneTripDBAPI)


async def count_trips(conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record each function the aiosqlite connection queues for its worker thread."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    trips: list[str] = []
    original: Callable[..., Any] = driver._execute

    async def counted(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", repr(fn)))
        return await original(fn, *args, **kwargs)

    monkeypatch.setattr(driver, "_execute", counted)
    return trips


async def test_a_statement_is_one_trip_with_the_same_results(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.connect() as conn:
        trips = await count_trips(conn, monkeypatch)
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.rowcount == 1
        assert inserted.lastrowid == 1
        assert len(trips) == 1

        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        assert many.rowcount == 2
        assert len(trips) == 2

        result = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
        assert list(result.keys()) == ["id", "name"]
        assert [tuple(r) for r in result] == [(1, "a"), (2, "b"), (3, "c")]
        assert len(trips) == 3

        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        assert len(trips) == 4

        returned = await conn.execute(text("INSERT INTO t (name) VALUES ('d') RETURNING id"))
        assert returned.scalar_one() == 4
        assert len(trips) == 5

        empty = await conn.execute(text("SELECT name FROM t WHERE id = 99"))
        assert empty.first() is None
        assert len(trips) == 6
        await conn.commit()


async def test_errors_are_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        await conn.rollback()
        with pytest.raises(exc.OperationalError):
            await conn.execute(text("SELECT nothing FROM nowhere"))
        await conn.rollback()
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 0


async def test_streaming_results_still_work(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": str(i)} for i in range(250)]
        )
        streamed = await conn.stream(text("SELECT name FROM t ORDER BY id"))
        names = [row[0] async for row in streamed]
        assert names == [str(i) for i in range(250)]


def worker_locals(driver: Any) -> dict[str, Any]:
    """The local variables of an aiosqlite connection's worker thread, waiting for work."""
    frame = sys._current_frames()[driver._thread.ident]
    while frame is not None and frame.f_code.co_name != "_connection_worker_thread":
        frame = frame.f_back  # type: ignore[assignment]
    assert frame is not None, "aiosqlite's worker thread changed: look at bot/shims/one_trip.py"
    return dict(frame.f_locals)


async def test_an_idle_connection_holds_no_rows_and_no_parameters(engine: AsyncEngine) -> None:
    """aiosqlite's worker keeps its last call and result until the next one: the adapter hands
    it lists that are emptied once read, so an idle pooled connection keeps no result alive."""
    async with engine.connect() as conn:
        await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": str(i)} for i in range(100)]
        )
        driver: Any = (await conn.get_raw_connection()).driver_connection
        held = worker_locals(driver)
        assert held["result"] == []
        assert held["function"].args[1:] == ([],)  # the job: statement and 100 parameters

        rows = (await conn.execute(text("SELECT name FROM t"))).all()
        assert len(rows) == 100
        held = worker_locals(driver)
        assert held["result"] == []
        assert held["function"].args[1:] == ([],)


ROUND_TRIP = """
import asyncio, tempfile
import bot  # installs the shims, as every process of the bot does
from sqlalchemy import text
from storage.db import create_engine

async def main() -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/t.db")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "a"}, {"n": "b"}])
        rows = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).all()
    print(type(engine.dialect.dbapi).__name__, *(row[0] for row in rows))
    await engine.dispose()

asyncio.run(main())
"""


def test_without_a_name_it_uses_the_stock_adapter_which_runs_queries() -> None:
    """SQLAlchemy 2.0 names `sqlalchemy.util.concurrency.await_` `await_only`: the one-trip
    adapter steps aside, says so once, and SQLAlchemy's own adapter runs. (SQLAlchemy's code
    keeps the module it was written with; what Daka looks up is the renamed one.)"""
    done = run_python(
        """
        import sys, types
        import sqlalchemy.dialects.sqlite.aiosqlite, sqlalchemy.ext.asyncio
        real = sys.modules["sqlalchemy.util.concurrency"]
        renamed = types.ModuleType(real.__name__)
        vars(renamed).update({k: v for k, v in vars(real).items() if k != "await_"})
        renamed.await_only = real.await_
        sys.modules[real.__name__] = renamed
        """,
        ROUND_TRIP,
    )
    assert done.stdout.split() == ["AsyncAdapt_aiosqlite_dbapi", "a", "b"]
    assert done.stderr.count("steps aside") == 1
    assert "sqlalchemy.util.concurrency:await_ is missing" in done.stderr


def test_on_another_release_the_stock_adapter_runs() -> None:
    done = run_python(PRETEND_RELEASES, ROUND_TRIP, RELEASES="sqlalchemy=2.2.0")
    assert done.stdout.split() == ["AsyncAdapt_aiosqlite_dbapi", "a", "b"]
    assert "sqlalchemy 2.2.0 is not the 2.1.x it was written for" in done.stderr
    done = run_python(PRETEND_RELEASES, ROUND_TRIP, RELEASES="aiosqlite=0.23.0")
    assert done.stdout.split() == ["AsyncAdapt_aiosqlite_dbapi", "a", "b"]


def test_on_the_locked_releases_the_one_trip_adapter_runs_silently() -> None:
    done = run_python(ROUND_TRIP)
    assert done.stdout.split() == ["OneTripDBAPI", "a", "b"]
    assert done.stderr == ""
