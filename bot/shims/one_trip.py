"""SQLAlchemy's aiosqlite adapter, with each statement run in one trip to the database thread.

aiosqlite runs SQLite on a worker thread: every call is a queue hand-off, a thread wake-up and
a wake-up of the event loop when its answer comes back — some 90 µs of CPU on the machines we
measure, while an indexed look-up in SQLite itself takes a few µs. SQLAlchemy's adapter makes
four such trips per statement (open a cursor, execute, fetch the rows, close the cursor), so an
ORM look-up cost about 0.65 ms of CPU, most of it hand-offs. `OneTripCursor` makes them one:
the worker thread opens a cursor, executes, fetches everything and closes it, and hands back
the rows with the cursor's description, row count and last row id. The results are the same;
server-side (streaming) cursors stay SQLAlchemy's own.

It subclasses SQLAlchemy 2.1's private adapter classes and leans on two private parts of
aiosqlite 0.22 — `Connection._execute` (queue a function for the worker thread) and
`Connection._conn` (its sqlite3 connection). Import it only through `bot.shims.sqlite`, which
checks the releases and every private name used here first (`SHIM` there lists them)."""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

Description = Sequence[tuple[Any, ...]] | None

# What goes to the worker thread and comes back, in lists emptied once read: aiosqlite's worker
# keeps its last call and result referenced until the next call arrives, so a tuple would keep
# the last statement's rows (or executemany's parameters) alive on every idle connection of the
# pool: 100 MB after an export of 100,000 rows.
Outcome = list[Any]
Job = list[Any]


def _run(connection: sqlite3.Connection, job: Job) -> Outcome:
    """In the worker thread: the whole statement (once, or `many` times), rows included."""
    operation, parameters, many = job
    job.clear()
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return [description, rows, cursor.rowcount, cursor.lastrowid]
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose statements each take one trip to the worker thread. It holds
    no aiosqlite cursor: what a DBAPI cursor reports after a statement is kept here."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no cursor to open: no trip
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Description = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        pass  # rows are fetched all at once

    async def _async_soft_close(self) -> None:
        return None  # the thread closed its cursor already; the rows stay until read

    def close(self) -> None:
        self._rows.clear()

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            outcome = await connection._execute(
                _run, connection._conn, [operation, parameters, many]
            )
        description, rows, self._rowcount, self._lastrowid = outcome
        outcome.clear()  # see `Outcome`
        self._description = description
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._trip(operation, seq_of_parameters, many=True)

    def nextset(self) -> None:
        return None  # SQLite statements have one result set


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DBAPI shim, handing out `OneTripConnection`s."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        creator_fn = kw.pop("async_creator_fn", None)
        connection = creator_fn(*arg, **kw) if creator_fn else self.aiosqlite.connect(*arg, **kw)
        if not creator_fn:
            connection._thread.daemon = True  # as SQLAlchemy does: never hold up an exit
        return OneTripConnection(self, await_(connection))
