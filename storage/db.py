"""The async engine and session factory, tuned for SQLite (WAL) and PostgreSQL alike.

`use_aiosqlite_module` lets whoever starts the process (the composition root, `bot.shims`) hand
SQLite engines a DBAPI module of its own for aiosqlite URLs; a process that only uses storage
gets SQLAlchemy's."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from json.scanner import make_scanner
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Executable, event, inspect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

SessionFactory = async_sessionmaker[AsyncSession]

# Makes the DBAPI module for an engine on an aiosqlite URL, or None for SQLAlchemy's own.
AiosqliteModule = Callable[[], object | None]
_aiosqlite_module: AiosqliteModule | None = None


def use_aiosqlite_module(make: AiosqliteModule | None) -> None:
    """From now on, engines on aiosqlite URLs take `make()`'s DBAPI module (SQLAlchemy's own
    adapter when it returns None, or with `make` None): how `bot.shims` installs its one-trip
    adapter without storage knowing the composition root."""
    global _aiosqlite_module
    _aiosqlite_module = make


def is_sqlite(url: str) -> bool:
    """SQLite needs a few pragmas and a single writer; PostgreSQL needs nothing special."""
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False, pooled: bool = True) -> AsyncEngine:
    """An engine whose SQLite connections use WAL, foreign keys and a busy timeout. Its errors
    never quote statement parameters: they carry people's locations and health answers, and
    errors end up in logs. Not `pooled`: each connection is closed when given back (an engine
    for one job on an event loop of its own)."""
    kwargs: dict[str, Any] = {
        "echo": echo,
        "hide_parameters": True,
        "json_deserializer": loads,
    }
    if not pooled:
        kwargs["poolclass"] = NullPool
    if is_sqlite(url):
        kwargs["connect_args"] = {"timeout": 30}
        if make_url(url).get_driver_name() == "aiosqlite" and _aiosqlite_module is not None:
            module = _aiosqlite_module()
            if module is not None:
                kwargs["module"] = module  # bot.shims: one trip to SQLite's thread, not four
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


# What json.loads runs, without its wrapper (typeshed types its argument as a scanner).
_scan_once = make_scanner(cast(Any, json.JSONDecoder()))


def loads(text: str) -> Any:
    """`json.loads` for the JSON columns, without its wrapper: the C scanner straight away, and
    `json.loads` only for what the scanner does not take whole (surrounding whitespace, an
    error to report). Check-ins carry two JSON columns; an export of 100,000 of them spent
    1.0 s in `json.loads`, two thirds of it in the wrapper around the scanner."""
    try:
        value, end = _scan_once(text, 0)
    except (StopIteration, ValueError, TypeError):
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return value


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    """Sessions that keep objects usable after commit (handlers read them to reply)."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def core_rows(
    session: AsyncSession, stmt: Executable, params: dict[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run a Core statement in the session's transaction (SQLModel's `exec` is typed for ORM),
    in one switch to SQLAlchemy's synchronous side rather than one to get the connection and
    another to execute: a class's figures take some 0.3 ms, of which this saved a tenth."""

    def run(sync: Session) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in sync.connection().execute(stmt, params).all()]

    return await session.run_sync(run)


Model = TypeVar("Model")


def columns_of(model: type[Any]) -> list[Column[Any]]:
    """A table model's columns, in the order `detached` takes their values."""
    return [cast(Column[Any], prop.columns[0]) for prop in inspect(model).column_attrs]


def detached(model: type[Model], values: Sequence[Any]) -> Model:
    """An instance of a table model holding a row read as Core (the values of
    `columns_of(model)`, in order), in no session: what callers only read (a visitor's
    organisations and roles, the organisation an app serves). Built as the ORM builds what it
    loads, without its per-row machinery or the identity map: a batch's read of its visitors
    spent as much loading the objects as running its statements. Changing one writes nothing."""
    made = _MAKERS.get(model)
    if made is None:
        mapper = inspect(model)
        made = _MAKERS[model] = (mapper.class_manager.new_instance, mapper.column_attrs.keys())
    new, keys = made
    instance = cast(Model, new())
    instance.__dict__.update(zip(keys, values, strict=True))
    return instance


_MAKERS: dict[type[Any], tuple[Callable[[], Any], list[str]]] = {}


def detached_once(
    made: dict[int, Model], key: int, model: type[Model], values: Sequence[Any]
) -> Model:
    """`detached(model, values)` the first time `key` (its id) comes in `made`, which keeps
    it: rows that repeat one organisation share one instance."""
    instance = made.get(key)
    if instance is None:
        instance = made[key] = detached(model, values)
    return instance


def database_unavailable(exc: BaseException) -> bool:
    """The database could not be reached or went away (as opposed to a bug or a constraint):
    what a channel's worker waits out and tries again, for any adapter."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | PoolTimeout):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, OSError | TimeoutError | ConnectionError):
            return True
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & {
            "PostgresConnectionError",
            "OperationalInterventionError",
            "CannotConnectNowError",
            "ConnectionDoesNotExistError",
            "InterfaceError",
        }:
            return True
        current = current.__cause__ or current.__context__
    return False
