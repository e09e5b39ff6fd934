"""What became of a message handed to a channel, in words every channel shares.

A channel's courier (or its replies) maps its platform's answers onto these; the outbox sender
decides from them alone what to do next: wait and send again, mark the person unreachable,
write the letter off, or retry with backoff."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

TELEGRAM: Final = "telegram"  # the channel name letters to Telegram chats are addressed on


class Letter(Protocol):
    """A letter as a courier reads it (`storage.models.Outbox` rows are letters): light-markup
    text and options (`domain.keys`) for an address on the courier's channel."""

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

Failure = RetryAfter | Unreachable | Refused | Transient
Outcome = Sent | Failure
