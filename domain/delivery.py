"""What became of a message handed to a channel, and how fast a channel takes them, in words
every channel shares.

A channel's courier (or its replies) maps its platform's answers onto these; the outbox sender
decides from them alone what to do next: wait and send again, mark the person unreachable,
write the letter off, or retry with backoff. Each courier declares its channel's `Pace`, and
the sender keeps to it, each channel apart."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

TELEGRAM: Final = "telegram"  # the channel name letters to Telegram chats are addressed on


class Letter(Protocol):
    """A letter as a courier reads it (`storage.models.Outbox` rows are letters): light-markup
    text and options (`domain.keys`) for an address on the courier's channel, on behalf of an
    organisation (a channel with an app per organisation sends it through that one's)."""

    @property
    def org_id(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def options(self) -> Sequence[Sequence[Mapping[str, str]]] | None: ...


@dataclass(frozen=True, slots=True)
class Sent:
    """Delivered."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """The channel asks for a pause of `seconds` before anything more is sent (Telegram 429);
    the same message goes again afterwards."""

    seconds: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The person cannot be reached on this channel (blocked the bot, deactivated, no such
    chat): sending again will not help until they write again."""

    detail: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The channel refused this message itself (a bad request): sending it again would be
    refused again."""

    detail: str


@dataclass(frozen=True, slots=True)
class Transient:
    """The channel or the way to it failed for now (5xx, network): worth trying again."""

    detail: str


SENT: Final = Sent()


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast a channel takes letters, as its courier declares it.

    At most `rate_per_second` over the whole channel (one bot, one app); to one address at
    most one every `per_recipient_interval` seconds and, where the channel counts them (and
    drops the excess), `per_recipient_per_minute` in any minute and `per_recipient_per_hour`
    in any hour (None: not counted)."""

    rate_per_second: float
    per_recipient_interval: float = 0.0
    per_recipient_per_minute: int | None = None
    per_recipient_per_hour: int | None = None

    def __post_init__(self) -> None:
        if not self.rate_per_second > 0 or self.per_recipient_interval < 0:
            raise ValueError(f"a pace needs a rate above 0 and no negative interval: {self}")
        for limit in (self.per_recipient_per_minute, self.per_recipient_per_hour):
            if limit is not None and limit < 1:
                raise ValueError(f"a per-recipient limit must allow at least one letter: {self}")

    @property
    def windows(self) -> tuple[tuple[float, int], ...]:
        """The counted windows, as (seconds, letters allowed in any such span)."""
        counted = ((60.0, self.per_recipient_per_minute), (3600.0, self.per_recipient_per_hour))
        return tuple((span, limit) for span, limit in counted if limit is not None)


FORGET_AFTER: Final = 100_000  # recipients remembered before the idle ones are dropped


class CountUnavailable(Exception):
    """A count shared between processes (Redis) could not be read or written: a letter waits
    briefly rather than go uncounted; a reply is sent all the same."""


class Windows(Protocol):
    """What a sender (a WeCom app) has sent each recipient lately, in the windows its channel
    counts per recipient (`Pace.windows`), as (seconds, messages allowed in any such span).
    `room` and `count` may raise `CountUnavailable` when the count is kept elsewhere."""

    @property
    def windows(self) -> tuple[tuple[float, int], ...]: ...

    async def room(self, recipient: str, messages: int = 1) -> float:
        """Seconds until `recipient` may be sent `messages` more messages; 0: now."""
        ...

    async def count(self, recipient: str) -> bool:
        """One message to `recipient` is going now; False when it goes past a window."""
        ...


def wait_for(
    times: Sequence[float], windows: Sequence[tuple[float, int]], now: float, messages: int
) -> float:
    """Seconds from `now` until `messages` more messages fit every window, given the times
    (ascending, none older than the longest window) the recipient was sent messages at. More
    than a window allows wait for that window to be empty. The arithmetic a count kept
    elsewhere (`handlers.wecom.windows`' Lua) repeats."""
    wait = 0.0
    for span, limit in windows:
        # The oldest of the last `limit - n` messages may stay; the one before must leave.
        n = min(max(messages, 1), limit)
        if len(times) + n > limit:
            wait = max(wait, times[-(limit - n + 1)] + span - now)
    return max(wait, 0.0)


@dataclass
class RecipientWindows:
    """What one sender (a WeCom app) has sent each recipient lately, in the windows its channel
    counts per recipient (`Pace.windows`: WeCom drops what goes past 30 a minute or 1,000 an
    hour to one member, without an error). One per app in a process, shared by everyone who
    sends on it: the conversation's replies count in it as the outbox's letters do, so a
    letter waits for the room a chatty member's replies took. Times are `now()`'s seconds.

    In-process only: replicas each sending on one app would each keep their own count. With
    `REDIS_URL` the app's count is kept in Redis instead (`handlers.wecom.windows`), shared by
    every process sending on the app."""

    windows: tuple[tuple[float, int], ...]
    now: Callable[[], float]
    _sent_at: dict[str, deque[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._longest = max((span for span, _ in self.windows), default=0.0)

    async def room(self, recipient: str, messages: int = 1) -> float:
        """Seconds until `recipient` may be sent `messages` more messages within the windows
        (a WeCom letter of a long text and its card is two); 0 when they may be now. More
        than a window allows wait for that window to be empty."""
        return self._room(recipient, messages)

    def _room(self, recipient: str, messages: int = 1) -> float:
        times = self._sent_at.get(recipient.lower())
        if not times:
            return 0.0
        now = self.now()
        self._drop_old(times, now)
        return wait_for(times, self.windows, now, messages)

    async def count(self, recipient: str) -> bool:
        """One message to `recipient` is going now; False when it goes past a window (the
        channel may drop it: a reply is sent all the same, it answers the member)."""
        if not self.windows:
            return True
        within = self._room(recipient) <= 0
        key = recipient.lower()
        times = self._sent_at.get(key)
        if times is None:
            if len(self._sent_at) > FORGET_AFTER:
                self._forget()
            times = self._sent_at[key] = deque()
        times.append(self.now())
        return within

    def _drop_old(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self._longest:
            times.popleft()

    def _forget(self) -> None:
        now = self.now()
        self._sent_at = {
            r: ts for r, ts in self._sent_at.items() if ts and ts[-1] > now - self._longest
        }


@dataclass(frozen=True)
class EveryWindows:
    """Several senders' counts seen as one (a deployment's WeCom apps): a recipient has room
    when every sender has room for them, so a letter waits for the fullest of their windows.
    Stricter than a count per sender, never looser. Each sender counts its own messages."""

    parts: tuple[Windows, ...]

    @property
    def windows(self) -> tuple[tuple[float, int], ...]:
        return self.parts[0].windows if self.parts else ()

    async def room(self, recipient: str, messages: int = 1) -> float:
        return max([await part.room(recipient, messages) for part in self.parts], default=0.0)

    async def count(self, recipient: str) -> bool:
        raise TypeError("count a message in the count of the sender sending it")


Failure = RetryAfter | Unreachable | Refused | Transient
Outcome = Sent | Failure
