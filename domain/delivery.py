"""What became of a message handed to a channel, and how fast a channel takes them, in words
every channel shares.

A channel's courier (or its replies) maps its platform's answers onto these; the outbox sender
decides from them alone what to do next: wait and send again, mark the person unreachable,
write the letter off, or retry with backoff. Each courier declares its channel's `Pace`, and
the sender keeps to it, each channel apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


Failure = RetryAfter | Unreachable | Refused | Transient
Outcome = Sent | Failure
