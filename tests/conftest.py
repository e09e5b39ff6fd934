"""Shared fixtures: real databases (SQLite files, PostgreSQL), a Redis and a PostgreSQL server
of the tests' own (tests/services.py), and a moving clock."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import bot  # noqa: F401  (first: aiogram's models are then built lazily, as in production)
from domain.clock import FixedClock
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from tests.fakebot import FakeBotAPI
from tests.services import (
    PostgresServer,
    RedisServer,
    start_postgres,
    start_redis,
    unavailable,
)


class _CertifiContextOnce:
    """The `ssl` module as aiogram's aiohttp session sees it, but for one thing: the SSL
    context it builds from certifi's bundle for every Bot (about 60 ms of CPU, most of the
    cost of starting a bot) is built once per test process and shared. The tests' bots talk
    plain HTTP to the local Bot API; an SSL context is never changed once built."""

    def __getattr__(self, name: str) -> Any:
        return getattr(ssl, name)

    @staticmethod
    @functools.cache
    def create_default_context(
        purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH, *, cafile: str | None = None
    ) -> ssl.SSLContext:
        return ssl.create_default_context(purpose, cafile=cafile)


def _share_certifi_context() -> None:
    import aiogram.client.session.aiohttp as aiogram_aiohttp  # after `bot`, as in production

    aiogram_aiohttp.ssl = _CertifiContextOnce()  # type: ignore[assignment]


_share_certifi_context()

PG_ADMIN_DSN = os.environ.get("DAKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

T = TypeVar("T")

# 2026-11-28 09:00 in Asia/Shanghai.
MORNING = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MORNING)


async def _pg_available() -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def create_pg_database(template: str | None = None) -> str:
    """A fresh PostgreSQL database, empty or a copy of `template`; skips (fails on CI) when
    the server is absent."""
    import asyncpg

    if not await _pg_available():
        unavailable(f"PostgreSQL is not running at {PG_ADMIN_DSN}")
    name = f"daka_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
        # The test's own database commits without waiting for its WAL flush (4–5 ms a commit
        # on the machine's server, which fsyncs): what a client sees is the same, durability
        # across a server crash is not under test here (tests/test_replicas.py crashes a
        # server of its own). A setting of this database only, gone with it.
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
    finally:
        await conn.close()
    return _pg_url(name)


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on an event loop of its own, in a thread: session fixtures are built on
    demand from inside a test's running loop."""
    with ThreadPoolExecutor(1) as apart:
        return apart.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test run (per worker), which tests copy: migrating
    costs about 0.3 s, a copy under a millisecond."""
    path = tmp_path_factory.mktemp("template") / "daka.db"
    _run_apart(_migrated(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per test run (per worker), cloned with CREATE
    DATABASE … TEMPLATE by the tests; dropped at the end."""
    url = _run_apart(create_pg_database())
    try:
        _run_apart(_migrated(url))
        yield url.rsplit("/", 1)[1]
    finally:
        _run_apart(drop_pg_database(url))


class PgClones:
    """Copies of the run's migrated template, each made before a test asks for it and dropped
    after the test on an event loop of its own (a thread), so that no test waits for CREATE
    DATABASE or DROP DATABASE: on the machine's PostgreSQL (fsync on) each takes 0.1–1.6 s,
    which was a third of the PostgreSQL variants' time. Every test still gets a fresh copy."""

    def __init__(self, template: str) -> None:
        self._template = template
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="pg-clones", daemon=True
        )
        self._thread.start()
        self._next: Future[str] | None = None
        self._drops: list[Future[None]] = []

    def _soon(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def take(self) -> str:
        """The URL of a fresh copy, yours to drop with `give_back`; the next is made meanwhile."""
        ready = self._next or self._soon(create_pg_database(self._template))
        self._next = self._soon(create_pg_database(self._template))
        return await asyncio.wrap_future(ready)

    def give_back(self, url: str) -> None:
        """Drop the copy at `url` in the background (its connections are cut: WITH FORCE)."""
        self._drops.append(self._soon(drop_pg_database(url)))

    def close(self) -> None:
        """Drop the copy made ahead and wait for every drop; then stop the thread."""
        try:
            if self._next is not None and self._next.exception() is None:
                self.give_back(self._next.result())
            for drop in self._drops:
                drop.result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


@pytest.fixture(scope="session")
def pg_clones(pg_template: str) -> Iterator[PgClones]:
    clones = PgClones(pg_template)
    try:
        yield clones
    finally:
        clones.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Each storage test runs once on a SQLite file and once on a fresh PostgreSQL database,
    migrated to the head (a copy of the run's template)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path_factory.mktemp("db") / "daka.db"
        shutil.copyfile(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    clones: PgClones = request.getfixturevalue("pg_clones")
    url = await clones.take()
    try:
        yield url
    finally:
        clones.give_back(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """An empty database on SQLite and on PostgreSQL, for the tests of migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'daka.db'}"
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SQLite file that is not there yet: for tests of what migrates it."""
    yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'daka.db'}"


@pytest.fixture
def migrated_sqlite_url(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A SQLite file at the head, a copy of the run's template (for tests on SQLite only)."""
    target = tmp_path_factory.mktemp("db") / "daka.db"
    shutil.copyfile(sqlite_template, target)
    yield f"sqlite+aiosqlite:///{target}"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis of the test run's own (one per worker process), stopped at the end."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def redis_database(server: RedisServer) -> AsyncIterator[str]:
    """The URL of an emptied database on the tests' own Redis, emptied again afterwards."""
    from redis.asyncio import Redis

    url = server.url()
    client = Redis.from_url(url)
    try:
        await client.flushall()
        yield url
    finally:
        await client.flushall()
        await client.aclose()


@pytest.fixture
async def redis_url(redis_server: RedisServer) -> AsyncIterator[str]:
    async with redis_database(redis_server) as url:
        yield url


@pytest.fixture
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which the test may stop and start again: tests
    that take a database away use it, never the machine's server."""
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    """The fake Telegram Bot API, on a free port of 127.0.0.1."""
    async with FakeBotAPI() as fake:
        yield fake
        assert fake.internal_errors == []
