"""The one way scheduled messages leave: drain the outbox at each channel's speed limits.

The sender knows no channel: each letter goes to the courier of its channel
(`scheduler.couriers`), which answers in neutral outcomes and declares its channel's `Pace`.
Each channel has a lane of its own (`scheduler.pacing`): its overall rate, one letter per
interval to an address, the per-recipient windows it counts, and its pauses, so one channel's
limits never slow another. A "retry after" (Telegram's 429) pauses that channel's sends for
that long, then the same message goes again; a recipient whose window is full (WeCom's 30 a
minute) gets the letter later: it goes back to the outbox, due when the window has room, and
holds no worker meanwhile. "Unreachable" (a 403) marks the member unreachable unless another
channel this sender serves reaches them; transient failures (5xx, network) are retried with
capped backoff, then the letter is marked failed; a refused letter is failed at once. A sender
claims only letters of the channels it has couriers for. Letters are claimed in batches, and
each one's outcome is written as it settles, in small groups (`Outcomes`): a killed sender
repeats only the sends that were on the wire and the few settled in the last milliseconds;
another sender takes the rest of its batch over once its lease runs out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from sqlmodel import col, select

from domain import metrics
from domain.clock import Clock
from domain.delivery import TELEGRAM, CountUnavailable, RetryAfter, Sent, Transient, Unreachable
from scheduler.couriers import Couriers, messages_in, recipients_of
from scheduler.pacing import Lane, Stopped
from storage.db import SessionFactory
from storage.models import CheckIn, Member, Outbox
from storage.repo import MemberRepo
from storage.schedules import OutboxRepo

log = logging.getLogger(__name__)

COUNT_RETRY: Final = (
    30.0  # seconds a letter waits when the recipients' shared count is out of reach
)


@dataclass
class SendStats:
    sent: int = 0
    skipped: int = 0
    blocked: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    deferred: int = 0  # put back for later: the recipient's window was full
    started: float = field(default_factory=time.monotonic)

    @property
    def handled(self) -> int:
        return self.sent + self.skipped + self.blocked + self.failed

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class Settled:
    """A letter's outcome; `unreachable` is its member when its channel said they cannot be
    reached there (blocked the bot)."""

    letter_id: int
    values: dict[str, Any]
    unreachable: int | None = None
    channel: str = ""


@dataclass
class Outcomes:
    """Outcomes on their way to the outbox, written as letters settle rather than per claimed
    batch: once `group` are waiting or `delay` seconds after the first of them, whichever comes
    first, and whatever gathered meanwhile goes with the next write (one write at a time).

    What a kill loses is what was not written yet: the sends on the wire, these few and the
    group being written; each is sent again by the sender that takes the batch over."""

    write: Callable[[Sequence[Settled]], Awaitable[None]]
    group: int = 16
    delay: float = 0.01
    _waiting: list[Settled] = field(default_factory=list)
    _timer: asyncio.TimerHandle | None = None
    _writing: asyncio.Task[None] | None = None

    def add(self, outcome: Settled) -> None:
        self._waiting.append(outcome)
        if len(self._waiting) >= self.group:
            self._start_writing()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self._start_writing)

    async def flush(self) -> None:
        """Everything added so far is written when this returns; raises if the write fails."""
        if self._writing is not None:
            await self._writing
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waiting:
            settled, self._waiting = self._waiting, []
            try:
                await self.write(settled)
            except BaseException:
                self._waiting[:0] = settled
                raise

    def _start_writing(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_waiting())

    async def _write_waiting(self) -> None:
        while self._waiting:
            settled, self._waiting = self._waiting, []
            try:
                await self.write(settled)
            except Exception as exc:
                # Kept for the next write, at the latest the batch's last (`flush`), which
                # raises if the database is still failing.
                self._waiting[:0] = settled
                log.warning("sender: writing %d outcomes failed: %s", len(settled), exc)
                return


@dataclass
class Sender:
    couriers: Couriers
    sessions: SessionFactory
    clock: Clock
    batch: int = 100
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 4
    backoff_cap: float = 30.0
    settle_group: int = 16  # small beside the up to 100 sends on the wire (aiohttp's limit)
    settle_delay: float = 0.01
    stats: SendStats = field(default_factory=SendStats)
    _lanes: dict[str, Lane] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event | None = None  # set: the batch in flight sends nothing more

    def __post_init__(self) -> None:
        self._lanes = {
            channel: Lane(c.pace, self._now, recipients_of(c))
            for channel, c in self.couriers.items()
        }
        rate = sum(lane.pace.rate_per_second for lane in self._lanes.values())
        self.batch = max(self.batch, int(rate))
        metrics.SEND_RATE.set(rate)

    def wake(self) -> None:
        """New letters are waiting (a round ran, an alert was written)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain whenever woken, and at least every second, until `stop` is set; a stop lets
        the letters on the wire finish and be recorded, and puts the rest of the batch back in
        the outbox for the next start (no pause, pace or retry of the batch is waited out)."""
        while not stop.is_set():
            try:
                await self.drain(stop=stop)
            except Exception:
                log.exception("sender: draining the outbox failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)

    async def drain(
        self, *, stop: asyncio.Event | None = None, progress_every: float = 10.0
    ) -> SendStats:
        """Send every letter that is due now (or until `stop` is set, between two batches);
        returns the running totals."""
        last_log = time.monotonic()
        self._stop = stop
        for lane in self._lanes.values():
            lane.stop = stop
        while stop is None or not stop.is_set():
            async with self.sessions() as session:
                letters = await OutboxRepo(session).claim(
                    now=self.clock.now(),
                    limit=self.batch,
                    lease=self.lease,
                    channels=list(self.couriers),
                )
                await session.commit()
            if not letters:
                return self.stats
            await self._send_batch(letters)
            if time.monotonic() - last_log >= progress_every:
                last_log = time.monotonic()
                await self._log_progress()
        return self.stats

    async def _log_progress(self) -> None:
        async with self.sessions() as session:
            left = await OutboxRepo(session).pending_count()
        rate = self.stats.rate()
        eta = left / rate if rate else float("inf")
        log.info(
            "sender: %d sent, %d left, %.1f/s, ETA %.0f s (%d skipped, %d blocked, %d failed)",
            self.stats.sent,
            left,
            rate,
            eta,
            self.stats.skipped,
            self.stats.blocked,
            self.stats.failed,
        )

    async def _send_batch(self, letters: Sequence[Outbox]) -> None:
        checked_in, unreachable = await self._recheck(letters)
        outcomes = Outcomes(self._write, self.settle_group, self.settle_delay)
        to_send = []
        for letter in letters:
            assert letter.id is not None
            if letter.kind == "remind" and (letter.member_id, letter.day) in checked_in:
                outcomes.add(Settled(letter.id, {"status": "skipped", "error": "checked in"}))
                self.stats.skipped += 1
            elif letter.member_id is not None and letter.member_id in unreachable:
                outcomes.add(Settled(letter.id, {"status": "skipped", "error": "unreachable"}))
                self.stats.skipped += 1
            else:
                to_send.append(letter)

        # One recipient's letters go one after another, in the order they were claimed (the
        # order they were written), so a pause or a slow answer never swaps two of them;
        # different recipients' letters go side by side.
        queues: dict[tuple[str, str], list[Outbox]] = {}
        for letter in to_send:
            queues.setdefault((letter.channel, letter.address), []).append(letter)

        async def send(queue: list[Outbox]) -> None:
            for letter in queue:
                letter_id, values = await self._deliver(letter)
                blocked = letter.member_id if values["status"] == "blocked" else None
                outcomes.add(Settled(letter_id, values, blocked, letter.channel))

        try:
            await asyncio.gather(*(send(queue) for queue in queues.values()))
        finally:
            await outcomes.flush()

    async def _write(self, settled: Sequence[Settled]) -> None:
        """One group of outcomes, and the members found unreachable, in one transaction."""
        blocked: dict[str, list[int]] = {}
        for s in settled:
            if s.unreachable is not None:
                blocked.setdefault(s.channel, []).append(s.unreachable)
        async with self.sessions() as session:
            await OutboxRepo(session).settle([(s.letter_id, s.values) for s in settled])
            for channel, members in blocked.items():
                await MemberRepo(session).mark_unreachable(
                    member_ids=members,
                    unless_on=[c for c in self.couriers if c != channel],
                    now=self.clock.now(),
                )
            await session.commit()

    async def _recheck(self, letters: Sequence[Outbox]) -> tuple[set[tuple[int, date]], set[int]]:
        """At send time: who has checked in since the round, and who cannot be reached."""
        members = {x.member_id for x in letters if x.member_id is not None}
        if not members:
            return set(), set()
        days = {x.day for x in letters}
        async with self.sessions() as session:
            checkins = (
                await session.exec(
                    select(col(CheckIn.member_id), col(CheckIn.local_day)).where(
                        col(CheckIn.member_id).in_(members), col(CheckIn.local_day).in_(days)
                    )
                )
            ).all()
            unreachable = (
                await session.exec(
                    select(col(Member.id)).where(
                        col(Member.id).in_(members), col(Member.unreachable_since).is_not(None)
                    )
                )
            ).all()
        return {(m, d) for m, d in checkins}, {m for m in unreachable if m is not None}

    async def _deliver(self, letter: Outbox) -> tuple[int, dict[str, Any]]:
        assert letter.id is not None
        attempts = letter.attempts
        courier = self.couriers[letter.channel]  # claimed only for channels with a courier
        lane = self._lanes[letter.channel]
        counted = not lane.counts  # in the recipient's windows: once, just before it goes
        size = 1 if counted else await messages_in(courier, letter)
        while True:
            if self._stop is not None and self._stop.is_set():
                return self._release(letter)
            try:
                if (
                    not counted
                    and (wait := await lane.room(letter.address, self._now(), size)) > 0
                ):
                    return self._defer(letter, lane, wait)
                if (paused := lane.paused_for()) > self._long_pause:
                    return self._defer(letter, lane, paused)  # the claim would outlive its lease
                await lane.wait_turn(letter.address)
                await lane.acquire()
                if self._stop is not None and self._stop.is_set():
                    return self._release(letter)  # its turn came after the stop
                if not counted:
                    now = self._now()
                    if await lane.room(letter.address, now, size) > 0:  # another took it
                        continue
                    await lane.book(letter.address, now, size)
                    counted = True
            except Stopped:
                return self._release(letter)
            except CountUnavailable as exc:
                # Sent uncounted, it could go past the member's limit and be dropped unseen.
                log.warning(
                    "letter %s waits: the recipients' count is out of reach: %s", letter.id, exc
                )
                return self._defer(letter, lane, COUNT_RETRY)
            try:
                outcome = await courier.deliver(letter)
            except Exception as exc:  # a bug, not an answer: not this batch's end
                self.stats.failed += 1
                metrics.REMINDERS_FAILED.inc()
                log.exception("letter %s failed: %s", letter.id, exc)
                return letter.id, {"status": "failed", "error": str(exc)[:300]}
            if isinstance(outcome, Sent):
                self.stats.sent += 1
                metrics.REMINDERS_SENT.inc()
                return letter.id, {
                    "status": "sent",
                    "attempts": attempts + 1,
                    "sent_at": self.clock.now(),
                    "error": None,
                }
            if isinstance(outcome, RetryAfter):
                self.stats.rate_limited += 1
                metrics.SEND_PAUSES.labels(channel=letter.channel).inc()
                if letter.channel == TELEGRAM:
                    metrics.TELEGRAM_429.inc()
                lane.pause(outcome.seconds)
                if outcome.seconds > self._long_pause:
                    return self._defer(letter, lane, outcome.seconds)
                continue
            if isinstance(outcome, Unreachable):
                self.stats.blocked += 1
                metrics.REMINDERS_FAILED.inc()
                return letter.id, {"status": "blocked", "error": outcome.detail[:300]}
            if isinstance(outcome, Transient):
                attempts += 1
                if attempts < self.max_attempts:
                    self.stats.retried += 1
                    await self._sleep(min(self.backoff_cap, 0.5 * 2 ** (attempts - 1)))
                    continue
                log.warning(
                    "letter %s failed after %d attempts: %s", letter.id, attempts, outcome.detail
                )
                self.stats.failed += 1
                metrics.REMINDERS_FAILED.inc()
                return letter.id, {
                    "status": "failed",
                    "attempts": attempts,
                    "error": outcome.detail[:300],
                }
            self.stats.failed += 1
            metrics.REMINDERS_FAILED.inc()
            return letter.id, {"status": "failed", "error": outcome.detail[:300]}

    def _now(self) -> float:
        """The clock in seconds: the time the recipients' windows are counted in."""
        return self.clock.now().timestamp()

    @property
    def _long_pause(self) -> float:
        """A pause a claimed letter does not wait out: past a quarter of the lease, another
        sender could take the batch for abandoned and send it again. The letter goes back to
        the outbox, due when the pause is over."""
        return self.lease.total_seconds() / 4

    async def _sleep(self, seconds: float) -> None:
        """A wait between two attempts, cut short when the sender stops."""
        if self._stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def _release(self, letter: Outbox) -> tuple[int, dict[str, Any]]:
        """The sender is stopping: a letter not sent yet goes back to the outbox as it was,
        due now, for the next sender (this one, started again) instead of holding the stop up
        for the batch's pace and pauses, or waiting out its lease."""
        assert letter.id is not None
        return letter.id, {"status": "pending", "claimed_at": None, "claimed_by": None}

    def _defer(self, letter: Outbox, lane: Lane, wait: float) -> tuple[int, dict[str, Any]]:
        """Back to the outbox, due once the recipient's window has room (a minute, an hour):
        neither dropped nor waited for with a worker held."""
        assert letter.id is not None
        lane.hold(letter.address, self._now() + wait)
        self.stats.deferred += 1
        return letter.id, {
            "status": "pending",
            "not_before": self.clock.now() + timedelta(seconds=wait),
            "claimed_at": None,
            "claimed_by": None,
        }
