"""Whether SQLite statements take one trip to aiosqlite's thread (`bot.shims.one_trip`) or the
four of SQLAlchemy's stock adapter: the one-trip adapter subclasses SQLAlchemy's private
aiosqlite classes and calls aiosqlite's private `_execute`, so it runs only on the releases it
was written for and when every name it uses is there (`SHIM`). `bot.shims.install` hands
`one_trip_module` to `storage.db.use_aiosqlite_module`; the check runs at the first engine."""

from __future__ import annotations

import sqlite3
from functools import cache
from typing import TYPE_CHECKING

from bot.shims.compat import Shim, resolve

if TYPE_CHECKING:
    from bot.shims.one_trip import OneTripDBAPI

ADAPTER = "sqlalchemy.dialects.sqlite.aiosqlite"
CURSOR = f"{ADAPTER}:AsyncAdapt_aiosqlite_cursor"
CONNECTION = f"{ADAPTER}:AsyncAdapt_aiosqlite_connection"
DBAPI = f"{ADAPTER}:AsyncAdapt_aiosqlite_dbapi"


def _instance_names() -> list[str]:
    """What is set in `__init__` and so cannot be looked up on a class: the adapter module's
    `aiosqlite` attribute and an aiosqlite connection's `_thread` (created, never started)."""
    import aiosqlite

    missing = []
    dbapi = resolve(DBAPI)(aiosqlite, sqlite3)  # type: ignore[operator]
    if getattr(dbapi, "aiosqlite", None) is not aiosqlite:
        missing.append(f"{DBAPI}().aiosqlite is missing")
    if not hasattr(aiosqlite.connect(":memory:"), "_thread"):
        missing.append("aiosqlite:Connection()._thread is missing")
    return missing


SHIM = Shim(
    name="one-trip SQLite cursor (bot/shims/one_trip.py)",
    written_for={"sqlalchemy": "2.1", "aiosqlite": "0.22"},
    names=(
        CURSOR,
        *(
            f"{CURSOR}.{name}"
            for name in (
                "_adapt_connection",
                "_connection",
                "_cursor",
                "_soft_closed_memoized",
                "_rows",
                "_async_soft_close",
                "_execute_async",
                "_executemany_async",
            )
        ),
        CONNECTION,
        f"{CONNECTION}._cursor_cls",
        f"{CONNECTION}._connection",
        f"{CONNECTION}._execute_mutex",
        f"{DBAPI}.connect",
        "sqlalchemy.util:EMPTY_DICT",
        "sqlalchemy.util.concurrency:await_",
        "aiosqlite:Connection._execute",
        "aiosqlite:Connection._conn",
    ),
    probe=_instance_names,
    buys="an ORM statement on SQLite in one hand-off to aiosqlite's thread instead of four",
)


def one_trip_module() -> OneTripDBAPI | None:
    """The DBAPI module to hand `create_async_engine(module=...)` for aiosqlite URLs, or None
    (SQLAlchemy's own adapter) when `SHIM` steps aside."""
    if not _allowed():
        return None
    import aiosqlite

    from bot.shims.one_trip import OneTripDBAPI

    return OneTripDBAPI(aiosqlite, sqlite3)


@cache
def _allowed() -> bool:
    """Checked once per process: one line in the log, not one per engine."""
    return SHIM.enabled()
