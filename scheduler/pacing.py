"""Each channel's pace inside the outbox sender: one `Lane` per channel, so a channel's limits,
and the pauses it asks for, hold back only its own letters.

A lane keeps its courier's `domain.delivery.Pace`: an overall rate (aiolimiter's leaky bucket
of one, refilled `rate_per_second` times a second, which spaces the sends evenly), a pause
(a "retry after" answer: nobody on the channel sends until it has passed), one letter per
`per_recipient_interval` to an address, and the windows a channel counts per recipient (WeCom:
30 a minute, 1,000 an hour per member, the excess dropped without a word).

Short waits (the pause, the rate, the interval) are slept in monotonic time. The windows are
kept in the injected clock's seconds, because a recipient whose window is full is not waited
for: the sender puts the letter back in the outbox for when the window has room (its
`not_before`), and tests move that clock. A courier whose client counts every message it sends
(`recipients`, a `domain.delivery.Windows`: WeCom's app, whose conversation replies count too)
lends the lane that count; otherwise the lane counts the letters it sent itself, in this
process. The courier's count is shared by every process sending on the app when it is kept in
Redis (`REDIS_URL`); a count out of reach raises `domain.delivery.CountUnavailable` from
`room`, and the sender puts the letter back for a little while rather than send it uncounted."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from domain.delivery import FORGET_AFTER, Pace, RecipientWindows, Windows

# The shortest wait the event loop keeps to: uvloop (libuv) rounds timers to whole
# milliseconds, so a bucket of one at 5,000 a second, waiting 0.2 ms per send, sent 900 a second.
TIMER_GRANULARITY = 0.002  # seconds


class Stopped(Exception):
    """The sender stopped while a letter waited for the channel's pause to end."""


@dataclass
class Lane:
    """One channel's traffic through a sender. `now` is the clock's seconds the recipients'
    windows are kept in; `shared` is the courier's own count, when its client keeps one."""

    pace: Pace
    now: Callable[[], float] = time.time
    shared: Windows | None = None
    limiter: AsyncLimiter = field(init=False)
    resume_at: float = 0.0  # monotonic: the end of the pause the channel asked for
    free_at: dict[str, float] = field(default_factory=dict)  # monotonic, per address
    held_until: dict[str, float] = field(default_factory=dict)  # clock s: letters put back
    stop: asyncio.Event | None = None  # the sender is stopping: a pause is not waited out

    def __post_init__(self) -> None:
        # A bucket of one that refills `rate` times a second spaces the sends evenly; a bucket
        # of `rate` would let a burst of `rate` through on top of `rate` a second. Above 500 a
        # second, the bucket holds what `TIMER_GRANULARITY` lets through (10 at 5,000 a
        # second): the loop's timers cannot space sends closer than that.
        rate = self.pace.rate_per_second
        capacity = max(1.0, rate * TIMER_GRANULARITY)
        self.limiter = AsyncLimiter(capacity, capacity / rate)
        self.sent: Windows = (
            self.shared
            if self.shared is not None
            else RecipientWindows(self.pace.windows, self.now)
        )

    @property
    def counts(self) -> bool:
        """Whether the channel counts letters per recipient over minutes or hours."""
        return bool(self.sent.windows)

    def pause(self, seconds: float) -> None:
        """The channel asked for a pause (a 429): nobody on it sends until it has passed."""
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)

    def paused_for(self) -> float:
        """Seconds left of the pause the channel asked for (0: none)."""
        return max(self.resume_at - time.monotonic(), 0.0)

    async def acquire(self) -> None:
        """A place in the channel's rate, taken once any pause is over: whoever queued during
        a pause must not all go at once when it ends."""
        while True:
            await self._wait_pause()
            await self.limiter.acquire()
            if self.resume_at <= time.monotonic():
                return

    async def _wait_pause(self) -> None:
        # A loop, not an Event: another 429 may push the resume time further while we sleep.
        while (delay := self.resume_at - time.monotonic()) > 0:
            if self.stop is None:
                await asyncio.sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay)
            if self.stop.is_set():
                raise Stopped

    async def wait_turn(self, address: str) -> None:
        """At most one letter every `per_recipient_interval` seconds to the same address."""
        interval = self.pace.per_recipient_interval
        if interval <= 0:
            return
        now = time.monotonic()
        free_at = self.free_at.get(address, 0.0)
        self.free_at[address] = max(now, free_at) + interval
        if free_at > now:
            await asyncio.sleep(free_at - now)
        if len(self.free_at) > FORGET_AFTER:
            self.free_at = {a: t for a, t in self.free_at.items() if t > now}

    async def room(self, address: str, now: float, messages: int = 1) -> float:
        """Seconds (of the clock, from `now`) until `address` may be sent one more letter of
        `messages` messages within the windows the channel counts (replies included, where
        the courier's client counts them); 0 when it may be now. Raises `CountUnavailable` when
        the courier's shared count is out of reach."""
        if not self.counts:
            return 0.0
        held = self.held_until.get(address, now) - now
        return max(held, await self.sent.room(address, messages), 0.0)

    async def book(self, address: str, now: float, messages: int = 1) -> None:
        """A letter of `messages` messages to `address` is going now: count them in its
        windows (a shared count counts them as the courier's client sends each)."""
        if not self.counts:
            return
        if self.shared is None:
            for _ in range(messages):
                await self.sent.count(address)
        if self.held_until.get(address, now) <= now:
            self.held_until.pop(address, None)

    def hold(self, address: str, until: float) -> None:
        """Letters to `address` were put back until `until`: the rest wait as long, so they
        still leave in the order they were written."""
        if len(self.held_until) > FORGET_AFTER:
            now = self.now()
            self.held_until = {a: t for a, t in self.held_until.items() if t > now}
        self.held_until[address] = max(self.held_until.get(address, until), until)
