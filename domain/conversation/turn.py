"""One turn of a conversation: who spoke, what Daka knows of them, and where to answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.clock import Clock
from domain.conversation.io import Out, Person, State
from storage.models import Account, Member, Organisation, RoleGrant
from storage.repo import Repo


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


@dataclass(slots=True)
class Turn:
    """Everything the core needs to answer one input; the adapter builds it per update."""

    person: Person
    visitor: Visitor
    repo: Repo
    clock: Clock
    state: State
    out: Out
    update_id: int | None = None  # the channel's id of the update, for idempotent writes
