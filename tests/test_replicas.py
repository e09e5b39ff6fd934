"""The scale deployment, as processes: two `daka webhook` replicas and `daka scheduler`s on a
real PostgreSQL and Redis, Telegram's deliveries coming from the fake Bot API through a
round-robin "load balancer". Also PostgreSQL stopping under them.

The PostgreSQL that is stopped is a server of the test's own (`pg_server`, tests/services.py:
initdb and pg_ctl on a free port), never the machine's; the Redis is the tests' own too.
Without PostgreSQL's server binaries those tests skip on a laptop and fail on CI."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from storage.db import create_engine, create_session_factory
from storage.models import CheckIn, InboundUpdate
from tests.fakebot import FakeBotAPI, FakeUser
from tests.scheduler.test_processes import (
    Received,
    kill,
    log_tail,
    outbox_and_runs,
    seed,
    slot_at,
    start_daka,
    start_scheduler,
    stop,
)
from tests.services import PostgresServer, free_port
from tests.test_kill import check_in, from_temperature, until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "replica-secret_0123456789"
RETRY = "打卡系统暂时无法访问数据"
OUTAGE_S = 10.0
STARTUP_S = 90.0  # two Daka processes importing at once on a busy 2-core machine


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/telegram"

    async def health(self) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.get(f"http://127.0.0.1:{self.port}/healthz") as response,
        ):
            return response.status, await response.text()

    async def until_health(self, status: int, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """Poll `/healthz` until it answers `status` (or fail with the process's log)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited:\n{log_tail(self.log)}"
            try:
                code, body = await self.health()
                if code == status:
                    return body
                last = f"{code} {body}"
            except aiohttp.ClientError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name}: /healthz never gave {status} ({last})")


def start_replica(
    server: FakeBotAPI, database_url: str, redis_url: str, home: Path, name: str, *, first: bool
) -> Replica:
    port = free_port()
    command = ["webhook", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--url", f"http://127.0.0.1:{port}"] if first else ["--no-set-webhook"]
    process = start_daka(
        command,
        server,
        database_url,
        home,
        name,
        REDIS_URL=redis_url,
        WEBHOOK_SECRET=SECRET,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
    )
    return Replica(name, port, process, home / f"{name}.log")


@asynccontextmanager
async def two_replicas(
    server: FakeBotAPI, database_url: str, redis_url: str, home: Path
) -> AsyncIterator[list[Replica]]:
    """Replica a sets the webhook, b does not; the fake then delivers to both in turn."""
    a = start_replica(server, database_url, redis_url, home, "a", first=True)
    b = start_replica(server, database_url, redis_url, home, "b", first=False)
    replicas = [a, b]
    try:
        for replica in replicas:
            await replica.until_health(200, timeout=STARTUP_S)
        await server.wait_for(lambda: bool(server.webhook_url), 30, "no replica set the webhook")
        server.webhook_targets = [a.url, b.url]
        yield replicas
    except BaseException:
        for replica in replicas:
            await kill(replica.process)
        raise
    try:
        for replica in replicas:
            await stop(replica.process, replica.log)
    finally:
        for replica in replicas:
            await kill(replica.process)  # a replica that failed to stop must not outlive us
    for replica in replicas:
        assert "Traceback" not in replica.log.read_text(), log_tail(replica.log)


@pytest.fixture
async def own_pg_url(pg_server: PostgresServer) -> str:
    """A database on the test's own PostgreSQL server, which the test stops and starts."""
    import asyncpg

    conn = await asyncpg.connect(pg_server.url().replace("+asyncpg", ""))
    try:
        await conn.execute('CREATE DATABASE "daka"')
    finally:
        await conn.close()
    return pg_server.url("daka")


async def journal_and_checkins(database_url: str) -> tuple[int, int, int]:
    """Updates journaled, check-ins, and the highest check-in version."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            updates = (await session.exec(select(func.count()).select_from(InboundUpdate))).one()
            checkins = (await session.exec(select(func.count()).select_from(CheckIn))).one()
            version = (await session.exec(select(func.max(col(CheckIn.version))))).one()
    finally:
        await engine.dispose()
    return int(updates), int(checkins), int(version or 0)


async def test_conversations_over_two_replicas_and_reminders_from_two_schedulers(
    server: FakeBotAPI, own_pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    members = 30
    ids = await seed(own_pg_url, members, [slot_at(0)])
    users = [server.user(uid, language_code="zh-hans") for uid in ids]
    reporters, others = users[:20], users[20:]

    async with two_replicas(server, own_pg_url, redis_url, tmp_path) as (a, b):
        await asyncio.wait_for(asyncio.gather(*(check_in(u) for u in reporters)), 120)
        await server.wait_webhook_idle(30)
        by_target = {a.url: 0, b.url: 0}
        for delivery in server.webhook_deliveries:
            by_target[delivery.target] += 1
        assert all(by_target.values()), f"one replica got nothing: {by_target}"

        updates, checkins, version = await journal_and_checkins(own_pg_url)
        assert updates == sum(1 for d in server.webhook_deliveries if d.status == 200)
        assert (checkins, version) == (len(reporters), 1)

        # Now the reminder round, with two schedulers racing for it.
        sent_before = len(server.calls_of("sendMessage"))
        received = Received(server)
        received.cursors[0] = len(server.calls)
        first = start_scheduler(server, own_pg_url, tmp_path, "s1")
        second = start_scheduler(server, own_pg_url, tmp_path, "s2")
        try:
            await received.until(lambda: received.messages >= len(others), "reminders")
            for user in others:  # the reminder; nothing after it
                server.drain(user.id)
            await server.expect_no_reply(others[-1].id, within=2.0)
        finally:
            await stop(first, tmp_path / "s1.log")
            await stop(second, tmp_path / "s2.log")
        reminded = {chat for chat, count in received.per_chat.items() if count}
        assert reminded == {u.id for u in others}
        assert all(count == 1 for count in received.per_chat.values()), received.per_chat
        assert len(server.calls_of("sendMessage")) == sent_before + len(others)
        statuses, runs = await outbox_and_runs(own_pg_url)
        assert statuses == {"sent": len(others)}
        assert sum(count for slot, count in runs.items() if slot.startswith("remind@")) == 1


async def test_healthz_fails_while_postgres_is_stopped_and_recovers(
    server: FakeBotAPI,
    own_pg_url: str,
    pg_server: PostgresServer,
    redis_url: str,
    tmp_path: Path,
) -> None:
    await seed(own_pg_url, 1, [slot_at(120)])  # a slot long past: no reminders
    async with two_replicas(server, own_pg_url, redis_url, tmp_path) as replicas:
        await asyncio.to_thread(pg_server.stop)
        for replica in replicas:
            body = await replica.until_health(503)
            assert '"database": "unavailable' in body and '"redis": "ok"' in body
        await asyncio.to_thread(pg_server.start)
        for replica in replicas:
            await replica.until_health(200)


async def test_postgres_stopped_for_ten_seconds_mid_checkin_loses_no_draft(
    server: FakeBotAPI,
    own_pg_url: str,
    pg_server: PostgresServer,
    redis_url: str,
    tmp_path: Path,
) -> None:
    ids = await seed(own_pg_url, 6, [slot_at(120)])
    users = [server.user(uid, language_code="zh-hans") for uid in ids]
    async with two_replicas(server, own_pg_url, redis_url, tmp_path) as replicas:

        async def halfway(user: FakeUser) -> None:
            user.send("/checkin")
            await until(user, "请发送您当前所在的位置")
            user.send_location(39.9087, 116.3975, accuracy=10)
            await until(user, "请输入您今天测量的体温")

        await asyncio.wait_for(asyncio.gather(*(halfway(u) for u in users)), 60)
        await server.wait_webhook_idle(30)

        await asyncio.to_thread(pg_server.stop)
        stopped_at = time.monotonic()
        for user in users:
            user.send("36.6")
        for user in users:
            reply = await until(user, RETRY)
            assert "36.6" not in reply.text
        assert all(r.process.poll() is None for r in replicas), "a replica died"
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
        await asyncio.to_thread(pg_server.start)
        for replica in replicas:
            await replica.until_health(200)

        await asyncio.wait_for(asyncio.gather(*(from_temperature(u) for u in users)), 120)
        _, checkins, version = await journal_and_checkins(own_pg_url)
        assert (checkins, version) == (len(users), 1)
