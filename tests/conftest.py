"""Shared fixtures: real databases (SQLite files, PostgreSQL) and a moving clock."""

from __future__ import annotations

import contextlib
import os
import socket
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

PG_ADMIN_DSN = os.environ.get("DAKA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ON_CI = os.environ.get("CI", "").lower() == "true"

# 2026-11-28 09:00 in Asia/Shanghai.
MORNING = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)


def free_port() -> int:
    """A TCP port nobody listens on right now, for a server a test starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
        if ON_CI:
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_DSN} (CI=true)")
        pytest.skip("PostgreSQL is not running")
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


REDIS_TEST_URL = os.environ.get("DAKA_TEST_REDIS", "redis://127.0.0.1:6379/9")


@contextlib.asynccontextmanager
async def redis_database() -> AsyncIterator[str]:
    """An emptied Redis database of its own; skips (fails on CI) when Redis is absent."""
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    client = Redis.from_url(REDIS_TEST_URL)
    try:
        await client.flushdb()
    except (RedisConnectionError, OSError):
        await client.aclose()
        if ON_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL} (CI=true)")
        pytest.skip("Redis is not running")
    try:
        yield REDIS_TEST_URL
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    async with redis_database() as url:
        yield url


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    """The fake Telegram Bot API, on a free port of 127.0.0.1."""
    async with FakeBotAPI() as fake:
        yield fake
        assert fake.internal_errors == []
