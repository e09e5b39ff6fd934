"""Couriers: the outbox sender's one door to each channel.

The sender is channel-neutral: it claims letters, keeps each channel's pace, retries, records
outcomes. For each letter it asks the courier of the letter's channel to deliver it and gets
back a neutral outcome (`domain.delivery`): sent, retry after N seconds, unreachable, refused,
or a transient failure. Each courier declares its channel's limits (`domain.delivery.Pace`).
The composition root (bot/) builds the couriers (Telegram's is
`handlers.telegram.courier.TelegramCourier`) and hands them to the sender by channel name; the
same names are the channels letters are addressed on (`Rounds.channels`, `Turn.channels`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from domain.delivery import Letter, Outcome, Pace, Windows


class Courier(Protocol):
    @property
    def pace(self) -> Pace:
        """How fast its channel takes letters (overall, and per recipient)."""
        ...

    async def deliver(self, letter: Letter) -> Outcome:
        """Deliver one letter to its address: what happened, never raising for what the
        channel answered (an exception is a bug, and fails only that letter)."""
        ...


Couriers = Mapping[str, Courier]  # by channel name ("telegram")


def recipients_of(courier: Courier) -> Windows | None:
    """The count per recipient a courier's client keeps of every message it sends (WeCom's
    app: letters and conversation replies alike), when it keeps one; the sender keeps its
    letters within it rather than counting them apart."""
    recipients = getattr(courier, "recipients", None)
    return recipients if recipients is not None and hasattr(recipients, "room") else None


async def messages_in(courier: Courier, letter: Letter) -> int:
    """How many messages the letter takes on its channel (a WeCom long text and its card:
    two), for a courier that tells (`messages`); one otherwise. The sender finds room for all
    of them in the recipient's windows before the first goes, since the channel drops the
    excess without a word."""
    count = getattr(courier, "messages", None)
    return max(int(await count(letter)), 1) if count is not None else 1
