"""The scheduler service: APScheduler runs the tick (due rounds) and housekeeping; the sender
drains the outbox. `daka run` starts it beside polling, `daka scheduler` on its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.clock import Clock
from domain.i18n import Translator
from domain.logcontext import log_context
from scheduler.couriers import Couriers
from scheduler.rounds import Rounds
from scheduler.sender import Sender
from storage.db import SessionFactory
from storage.repo import Repo
from storage.repos.privacy import Forget
from storage.schedules import OutboxRepo

log = logging.getLogger(__name__)

JOURNAL_KEEP = timedelta(days=2)
OUTBOX_KEEP = timedelta(days=14)
TICK_SECONDS = 15
STOP_GRACE = 20.0  # seconds a running round may take to finish when the process stops
SEND_GRACE = 5.0  # seconds the letters on the wire may take to be answered at a stop


async def prune_journal(sessions: SessionFactory, clock: Clock) -> int:
    """Drop handled updates older than two days (the journal is a crash buffer, not an
    archive) and settled letters older than two weeks (their texts name people)."""
    with log_context(job="prune-journal"):
        async with sessions() as session:
            removed = await Repo(session).journal.prune(before=clock.now() - JOURNAL_KEEP)
            letters = await OutboxRepo(session).prune(before=clock.now() - OUTBOX_KEEP)
            await session.commit()
        log.info("pruned %d handled updates and %d settled letters", removed, letters)
    return removed


async def apply_retention_now(sessions: SessionFactory, clock: Clock) -> dict[str, int]:
    """The retention job: each answer past the period its form gives it goes."""
    from storage.retention import apply_retention

    with log_context(job="retention"):
        async with sessions() as session:
            touched = await apply_retention(session, now=clock.now())
            await session.commit()
    log.info("retention: %d check-ins cleared", sum(touched.values()))
    return touched


async def erase_withdrawn_now(
    sessions: SessionFactory, clock: Clock, forget: Forget | None = None
) -> list[tuple[str, str]]:
    """The erasure job: the answers of members who withdrew consent go once their
    organisation's grace period is over (not under a legal hold). `forget` clears their
    conversations kept outside the database (Telegram's state in Redis), before the erasure
    commits: if it fails, nothing is committed and the next run erases them again."""
    with log_context(job="erasure"):
        async with sessions() as session:
            done = await Repo(session).privacy.erasures(now=clock.now())
            identities = [i for _, _, erased in done for i in erased.identities]
            if forget is not None and identities:
                await forget(identities)
            await session.commit()
            if forget is not None and identities:
                await forget_again(forget, identities)
        if done:
            log.info("erasure: answers of %d withdrawn member(s) erased", len(done))
    return [(slug, member_id) for slug, member_id, _ in done]


async def forget_again(forget: Forget, identities: Sequence[tuple[str, str]]) -> None:
    """Once the erasure has committed, its conversations kept outside the database are cleared
    again: a turn it waited for may have written its step there after the first clearing
    (`handlers.telegram.updates`, which clears it itself when it sees the erasure). Failing
    now is only logged: the erasure is committed."""
    try:
        await forget(identities)
    except Exception as exc:
        log.warning("erasure: conversations not cleared again after the commit: %s", exc)


@dataclass
class SchedulerService:
    """Due rounds every few seconds (missed slots within the grace period run late, once)."""

    couriers: Couriers
    sessions: SessionFactory
    clock: Clock
    i18n: Translator
    forget: Forget | None = None  # conversations kept outside the database, at erasure
    send_grace: float = SEND_GRACE

    def __post_init__(self) -> None:
        # Letters are addressed on the channels there are couriers for, and no other.
        self.rounds = Rounds(self.sessions, self.clock, self.i18n, frozenset(self.couriers))
        self.sender = Sender(self.couriers, self.sessions, self.clock)
        self.stop_event = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()

    def _job(
        self, name: str, job: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[None]]:
        """A job that stop() waits for; one cut short by the end of the process rolls back
        (each job is one transaction) and says so in one line, not a traceback."""

        async def run(*args: Any) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job(*args)
            except asyncio.CancelledError:
                log.warning("%s job stopped by shutdown; its transaction rolled back", name)
            finally:
                self._running.discard(task)

        return run

    async def tick(self) -> None:
        with log_context(job="tick"):
            results = await self.rounds.tick()
        if results:
            self.sender.wake()

    def start(self) -> tuple[AsyncIOScheduler, asyncio.Task[None]]:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            self._job("tick", self.tick),
            "interval",
            seconds=TICK_SECONDS,
            id="tick",
            max_instances=1,
            coalesce=True,
            next_run_time=self.clock.now(),
        )
        scheduler.add_job(
            self._job("prune-journal", prune_journal),
            "interval",
            hours=1,
            args=[self.sessions, self.clock],
            id="prune-journal",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._job("retention", apply_retention_now),
            "interval",
            hours=6,
            args=[self.sessions, self.clock],
            id="retention",
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._job("erasure", erase_withdrawn_now),
            "interval",
            hours=1,
            args=[self.sessions, self.clock, self.forget],
            id="erasure",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        return scheduler, asyncio.create_task(self.sender.run(self.stop_event))

    async def stop(self, scheduler: AsyncIOScheduler, sending: asyncio.Task[None]) -> None:
        scheduler.shutdown(wait=False)
        self.stop_event.set()
        self.sender.wake()
        # The sender puts back what has not gone yet; a letter whose answer does not come in
        # time is left claimed, and goes again once its lease runs out (as after a crash).
        done, _ = await asyncio.wait({sending}, timeout=self.send_grace)
        if not done:
            log.warning("sender: stopped with letters unanswered; they go again after the lease")
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=STOP_GRACE)
            for task in late:
                task.cancel()
