"""What the update being handled shares with the middlewares and the FSM storage."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Account, Member, Organisation, RoleGrant


@dataclass
class Visitor:
    """Who sent the update, as Daka knows them: account, enrolments, roles, organisation."""

    telegram_id: int
    account: Account | None
    members: list[Member] = field(default_factory=list)
    roles: list[RoleGrant] = field(default_factory=list)
    org: Organisation | None = None
    orgs: dict[int, Organisation] = field(default_factory=dict)  # of the enrolments and roles

    @property
    def member(self) -> Member | None:
        """The enrolment used for checking in (the first, when someone has several)."""
        return self.members[0] if self.members else None

    @property
    def org_language(self) -> str | None:
        return self.org.language if self.org else None


@dataclass
class Batch:
    """Updates handled together in one transaction (the polling loop's unit of work)."""

    session: AsyncSession
    visitors: dict[int, Visitor] = field(default_factory=dict)
    fsm: dict[str, tuple[str | None, dict[str, Any]]] = field(default_factory=dict)
    fsm_keys: dict[str, Any] = field(default_factory=dict)  # their aiogram StorageKeys
    failed: bool = False
    checkins: int = 0  # counted in the metrics once the batch commits


current_batch: ContextVar[Batch | None] = ContextVar("daka_batch", default=None)


def note_checkin() -> None:
    """A check-in was recorded by the update being handled (counted once it commits)."""
    batch = current_batch.get()
    if batch is not None:
        batch.checkins += 1
