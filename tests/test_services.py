"""The servers the tests own (tests/services.py): never the machine's, emptied or removed after
use, and a PostgreSQL that a test can stop and start again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.slow


async def test_each_test_gets_an_empty_redis_of_the_runs_own(
    redis_server: RedisServer, redis_url: str
) -> None:
    assert redis_url.startswith(f"redis://127.0.0.1:{redis_server.port}/")
    assert redis_server.port != 6379
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        assert await client.dbsize() == 0
        config = await client.config_get("*")
        assert Path(str(config["dir"])) == redis_server.folder.resolve()
        assert config["save"] == "" and config["appendonly"] == "no"
        await client.set("left:behind", "by this test")  # emptied before the next test
    finally:
        await client.aclose()


async def test_a_postgres_of_the_tests_own_stops_and_starts_again(
    pg_server: PostgresServer,
) -> None:
    dsn = pg_server.url().replace("+asyncpg", "")
    conn = await asyncpg.connect(dsn)
    try:
        data = Path(await conn.fetchval("SHOW data_directory"))
        assert data == pg_server.data and pg_server.port != 5432
    finally:
        await conn.close()

    await asyncio.to_thread(pg_server.stop)
    with pytest.raises(OSError):
        await asyncpg.connect(dsn, timeout=5)

    await asyncio.to_thread(pg_server.start)
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT 1") == 1
    finally:
        await conn.close()
