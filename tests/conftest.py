"""Shared fixtures: real databases (SQLite files, PostgreSQL), a Redis and a PostgreSQL server
of the tests' own (tests/services.py), and a moving clock."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

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

PG_ADMIN_DSN = os.environ.get("DAKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

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


async def create_pg_database() -> str:
    """A fresh, empty PostgreSQL database; skips (fails on CI) when the server is absent."""
    import asyncpg

    if not await _pg_available():
        unavailable(f"PostgreSQL is not running at {PG_ADMIN_DSN}")
    name = f"daka_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """Each storage test runs once on a SQLite file and once on a fresh PostgreSQL database."""
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
    await upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'daka.db'}"


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
