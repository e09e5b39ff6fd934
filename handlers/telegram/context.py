"""What the Telegram update being handled shares with the middlewares and the FSM storage."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.conversation.turn import Visitor


@dataclass
class Batch:
    """Updates handled together in one transaction (the polling loop's unit of work)."""

    session: AsyncSession
    visitors: dict[int, Visitor] = field(default_factory=dict)
    fsm: dict[str, tuple[str | None, dict[str, Any]]] = field(default_factory=dict)
    fsm_keys: dict[str, Any] = field(default_factory=dict)  # their aiogram StorageKeys
    # The steps the database held when the batch began (read once per batch: never remembered
    # across batches, where an erasure elsewhere could have deleted them).
    fsm_read: dict[str, tuple[str | None, dict[str, Any]]] = field(default_factory=dict)
    # The senders' accounts' erasures as the batch read them (`AccountRepo.check_unerased`).
    erasures: dict[int, int] = field(default_factory=dict)
    senders: dict[int, int] = field(default_factory=dict)  # their Telegram ids: account ids
    failed: bool = False
    checkins: int = 0  # counted in the metrics once the batch commits


current_batch: ContextVar[Batch | None] = ContextVar("daka_batch", default=None)


def note_checkin() -> None:
    """A check-in was recorded by the update being handled (counted once it commits)."""
    batch = current_batch.get()
    if batch is not None:
        batch.checkins += 1
