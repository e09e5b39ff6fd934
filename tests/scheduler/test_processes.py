"""`daka scheduler` as real processes on the real clock: SIGKILL and SIGTERM in the middle of
a round, two schedulers on one database, a scheduler that starts after the slot time.

Each test seeds an organisation whose reminder slot is due now on the system clock (slots are
due from their local time until 30 minutes later, `domain.schedule.GRACE`), starts
`python -m bot scheduler` against the in-process fake Bot API and watches what reaches it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from domain.clock import SystemClock
from domain.delivery import TELEGRAM, Pace
from domain.schedule import GRACE, ScheduleSpec
from scheduler.sender import Sender
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.models import Outbox, SlotRun
from storage.schedules import ScheduleRepo
from tests.fakebot import FakeBotAPI
from tests.scheduler.couriers import RecordingCourier
from tests.storage.seeding import enrol_in_bulk, migrated_session

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_ID = 7_000_001
CLASS_SIZE = 50
SEND_RATE = 400  # per process; the fake enforces no limit unless told to
WAIT_S = 60.0


def sender_batch(rate: float) -> int:
    """How many letters a sender at `rate` claims at once (as `Sender` decides it)."""
    couriers = {TELEGRAM: RecordingCourier(TELEGRAM, Pace(rate, 1.0))}
    return Sender(couriers, cast(SessionFactory, None), SystemClock()).batch


def slot_at(minutes_ago: int) -> str:
    """HH:MM in Shanghai `minutes_ago` minutes before now (the current minute for 0). A slot
    stays due for `GRACE` after its minute began, so crossing a minute boundary between here
    and the scheduler's first tick does not matter."""
    return f"{datetime.now(SHANGHAI) - timedelta(minutes=minutes_ago):%H:%M}"


async def seed(database_url: str, members: int, remind: Sequence[str]) -> list[int]:
    """An organisation of `members` enrolled members (Telegram ids bound directly) whose
    reminders are at `remind`; the cutoff and report come last in the day and send nothing
    (nobody manages this organisation)."""
    ids = list(range(FIRST_ID, FIRST_ID + members))
    classes = max(1, members // CLASS_SIZE)
    async with migrated_session(database_url) as session:
        org_id = await enrol_in_bulk(
            session,
            slug="school",
            members=[(f"年级/{i % classes + 1}班", tid) for i, tid in enumerate(ids)],
            now=datetime.now(UTC),
        )
        spec = ScheduleSpec.parse(
            remind=",".join(remind), cutoff="23:59", report="23:59", days="all"
        )
        await ScheduleRepo(session).put(org_id=org_id, unit_id=None, spec=spec)
        await session.commit()
    return ids


# Settings of the environment that a test's Daka process must not inherit.
DAKA_SETTINGS = ("BOT_", "REDIS_", "DATABASE_", "TELEGRAM_", "SEND_", "WEBHOOK_", "LOG_")


def start_daka(
    args: Sequence[str],
    server: FakeBotAPI,
    database_url: str,
    home: Path,
    name: str,
    **settings: str,
) -> subprocess.Popen[bytes]:
    """`python -m bot ARGS` against the fake Bot API and `database_url`, in `home`, with its
    log in `home/NAME.log`; `settings` are more environment variables (LOG_LEVEL=...)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(DAKA_SETTINGS)},
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.url,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        **settings,
    }
    with open(home / f"{name}.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def start_scheduler(
    server: FakeBotAPI,
    database_url: str,
    home: Path,
    name: str,
    *,
    log_level: str = "WARNING",
    send_rate: int = SEND_RATE,
) -> subprocess.Popen[bytes]:
    return start_daka(
        ["scheduler"],
        server,
        database_url,
        home,
        name,
        SEND_RATE=str(send_rate),
        LOG_LEVEL=log_level,
    )


async def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM and wait (off the event loop: the fake server must keep answering meanwhile);
    the scheduler must exit cleanly."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(process.wait, 20)
    except subprocess.TimeoutExpired:
        process.kill()
        await asyncio.to_thread(process.wait, 10)
        raise AssertionError(f"the scheduler ignored SIGTERM:\n{log_tail(log)}") from None
    assert code == 0, f"the scheduler exited with {code}:\n{log_tail(log)}"


async def kill(process: subprocess.Popen[bytes]) -> None:
    """After a failure: the process must not outlive the test."""
    if process.poll() is None:
        process.kill()
    await asyncio.to_thread(process.wait, 10)


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"


class Received:
    """Reminders that reached the fake servers, per chat, per server and when (the fake's
    clock); scans only the calls that are new, so it is cheap to call after every request."""

    def __init__(self, *servers: FakeBotAPI) -> None:
        self.servers = servers
        self.cursors = [0] * len(servers)
        self.per_chat: Counter[int] = Counter()
        self.per_server = [0] * len(servers)
        self.times: list[float] = []

    def scan(self) -> int:
        """How many chats have at least one reminder."""
        for n, server in enumerate(self.servers):
            calls = server.calls
            for call in calls[self.cursors[n] :]:
                if call.method == "sendMessage" and call.ok and call.chat_id is not None:
                    self.per_chat[call.chat_id] += 1
                    self.per_server[n] += 1
                    self.times.append(call.at)
            self.cursors[n] = len(calls)
        return len(self.per_chat)

    @property
    def messages(self) -> int:
        return sum(self.per_chat.values())

    async def until(self, predicate: Callable[[], bool], message: str) -> None:
        """Until `predicate` holds, re-checked after every request to any of the servers."""

        def check() -> bool:
            self.scan()
            return predicate()

        waits = [asyncio.ensure_future(s.wait_for(check, WAIT_S, message)) for s in self.servers]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            await next(iter(done))  # raises the AssertionError of a timeout
        finally:
            for wait in waits:
                wait.cancel()
            for wait in waits:
                with contextlib.suppress(asyncio.CancelledError, AssertionError):
                    await wait


async def outbox_and_runs(database_url: str) -> tuple[Counter[str], Counter[str]]:
    """Letters by status, and how many times each slot was claimed."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            statuses = (
                await session.exec(
                    select(Outbox.status, func.count()).group_by(col(Outbox.status))
                )
            ).all()
            slots = (
                await session.exec(select(SlotRun.slot, func.count()).group_by(SlotRun.slot))
            ).all()
    finally:
        await engine.dispose()
    return Counter(dict(statuses)), Counter(dict(slots))


async def in_flight(database_url: str) -> dict[int, str]:
    """Letters a sender has claimed and not yet settled: chat -> the claim's token."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            rows = await session.exec(
                select(Outbox.address, Outbox.claimed_by).where(Outbox.status == "sending")
            )
            return {int(chat): token or "" for chat, token in rows.all()}
    finally:
        await engine.dispose()


async def expire_leases(database_url: str, tokens: set[str]) -> int:
    """Make these claims as old as a sender's lease: what two minutes of waiting would do,
    without the two minutes."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            result = await session.exec(
                update(Outbox)
                .where(col(Outbox.status) == "sending", col(Outbox.claimed_by).in_(tokens))
                .values(claimed_at=datetime.now(UTC) - Sender.lease - timedelta(seconds=1))
            )
            await session.commit()
            return int(result.rowcount or 0)
    finally:
        await engine.dispose()


async def test_sigkill_in_the_middle_of_a_round_skips_nobody(
    server: FakeBotAPI, tmp_path: Path
) -> None:
    members = 2000
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    slot = slot_at(0)
    ids = await seed(url, members, [slot])
    received = Received(server)
    log = tmp_path / "scheduler.log"

    process = start_scheduler(server, url, tmp_path, "scheduler")
    try:
        # 45%: in the middle of the third batch of 400 (batches go out whole, one at a time).
        await received.until(lambda: received.messages >= members * 0.45, "45% reminded")
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        reminded_at_kill = received.scan()
        at_kill = received.per_chat.copy()
        assert received.messages == reminded_at_kill, "a reminder was doubled before the kill"
        assert reminded_at_kill < members, "the round ended before the kill: nothing was tested"
        claimed = await in_flight(url)
        # A sender claims one batch at a time and settles it before the next claim, so what
        # the kill can leave unsettled is at most one batch: `Sender.batch` (100) raised to
        # SEND_RATE by `Sender.__post_init__`, i.e. 400 here.
        batch = sender_batch(SEND_RATE)
        assert len(claimed) <= batch

        process = start_scheduler(server, url, tmp_path, "scheduler")
        not_held = set(ids) - claimed.keys()
        await received.until(
            lambda: not_held <= received.per_chat.keys(), "the rest of the round after restart"
        )
        # The killed sender's batch stays with it until its lease runs out (a live sender in
        # another process might still be sending it); then the restarted one takes it over.
        still = await in_flight(url)
        assert {chat: still.get(chat) for chat in claimed} == claimed
        assert await expire_leases(url, set(claimed.values())) == len(claimed)
        await received.until(
            lambda: all(received.per_chat[c] > at_kill[c] for c in claimed),
            "the killed sender's batch taken over",
        )
    except BaseException:
        await kill(process)
        raise
    await stop(process, log)

    received.scan()
    statuses, runs = await outbox_and_runs(url)
    assert set(received.per_chat) == set(ids), "a member was skipped"
    # A reminder is repeated only if the kill fell after Telegram took it and before the sender
    # wrote "sent": its letter is among the unsettled (`claimed`) ones, at most one batch.
    repeated = received.messages - members
    assert repeated <= len(claimed) <= batch
    assert all(received.per_chat[c] == 1 for c in not_held), "a settled letter went twice"
    assert statuses == {"sent": members}
    assert runs[f"remind@{slot}"] == 1
    print(
        f"\nkill at {reminded_at_kill}/{members} reminded, {len(claimed)} letters in flight, "
        f"{repeated} repeated"
    )


async def test_sigterm_in_the_middle_of_a_round_finishes_the_batch_and_stops(
    server: FakeBotAPI, tmp_path: Path
) -> None:
    """A stop (docker stop, systemctl stop) does not wait for the whole outbox: the batch in
    flight is finished and recorded, the rest goes after the restart, nothing twice."""
    members = 1200
    batch = sender_batch(SEND_RATE)
    assert members >= 3 * batch
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    slot = slot_at(0)
    ids = await seed(url, members, [slot])
    received = Received(server)
    log = tmp_path / "scheduler.log"
    process = start_scheduler(server, url, tmp_path, "scheduler")
    try:
        await received.until(lambda: received.messages > batch, "the second batch begun")
        process.send_signal(signal.SIGTERM)
    except BaseException:
        await kill(process)
        raise
    await stop(process, log)
    received.scan()
    statuses, _ = await outbox_and_runs(url)
    assert statuses["sending"] == 0, "a letter was left claimed by the stopped sender"
    assert statuses["sent"] == received.messages == len(received.per_chat)
    assert statuses["pending"] >= batch, "the stop waited for the whole round"

    process = start_scheduler(server, url, tmp_path, "scheduler")
    try:
        await received.until(lambda: received.scan() == members, "the rest after the restart")
    except BaseException:
        await kill(process)
        raise
    await stop(process, log)
    received.scan()
    statuses, runs = await outbox_and_runs(url)
    assert sorted(received.per_chat.elements()) == ids
    assert statuses == {"sent": members}
    assert runs[f"remind@{slot}"] == 1


async def test_two_schedulers_on_one_database_send_each_reminder_once(
    server: FakeBotAPI, tmp_path: Path, database_url: str
) -> None:
    """On SQLite and on PostgreSQL (row locks with SKIP LOCKED there)."""
    members = 1000
    url = database_url
    slot = slot_at(0)
    ids = await seed(url, members, [slot])
    # Each process talks to a fake Telegram of its own, so we can tell who sent what.
    async with FakeBotAPI() as other:
        received = Received(server, other)
        # Slower than the others, so that neither can send the whole round on its own before
        # the other has started.
        first = start_scheduler(server, url, tmp_path, "first", send_rate=200)
        second = start_scheduler(other, url, tmp_path, "second", send_rate=200)
        try:
            await received.until(lambda: received.messages >= members, "every member reminded")
        except BaseException:
            await kill(first)
            await kill(second)
            raise
        await stop(first, tmp_path / "first.log")
        await stop(second, tmp_path / "second.log")
        assert other.internal_errors == []
    received.scan()
    statuses, runs = await outbox_and_runs(url)
    assert sorted(received.per_chat.elements()) == ids, "a member got two reminders, or none"
    assert all(received.per_server), f"one process sent nothing: {received.per_server}"
    print(f"\ntwo schedulers: reminders sent {received.per_server[0]} + {received.per_server[1]}")
    assert statuses == {"sent": members}
    assert runs[f"remind@{slot}"] == 1


async def test_a_late_start_runs_a_slot_within_grace_once_and_a_older_one_never(
    server: FakeBotAPI, tmp_path: Path
) -> None:
    members = 60
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    missed, late = slot_at(40), slot_at(20)
    assert timedelta(minutes=40) > GRACE > timedelta(minutes=21)
    ids = await seed(url, members, [missed, late])
    received = Received(server)
    log = tmp_path / "scheduler.log"
    process = start_scheduler(server, url, tmp_path, "scheduler", log_level="INFO")
    try:
        # Both slots are looked at in the same tick: once the 20-minute-late round is out, the
        # 40-minute-late one has been passed over.
        await received.until(lambda: received.scan() == members, "the late round")
    except BaseException:
        await kill(process)
        raise
    await stop(process, log)
    received.scan()
    statuses, runs = await outbox_and_runs(url)
    assert sorted(received.per_chat.elements()) == ids
    assert runs[f"remind@{late}"] == 1
    assert f"remind@{missed}" not in runs
    assert statuses == {"sent": members}
    assert f"remind@{late}: {members} letters (late" in log.read_text()
