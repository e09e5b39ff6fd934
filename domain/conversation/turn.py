"""One turn of a conversation: who spoke, what Daka knows of them, and where to answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from domain.clock import Clock
from domain.conversation.io import Out, Person, State
from domain.delivery import TELEGRAM
from domain.i18n import choose_language
from storage.models import Account, Member, Organisation, RoleGrant
from storage.repo import Repo


@dataclass
class Visitor:
    """Who sent the update, as Daka knows them: their id on the channel they wrote from, and
    their account (None until they first do something Daka keeps), enrolments, roles and
    organisation."""

    channel: str
    external_id: str
    account: Account | None
    members: list[Member] = field(default_factory=list)
    roles: list[RoleGrant] = field(default_factory=list)
    org: Organisation | None = None
    orgs: dict[int, Organisation] = field(default_factory=dict)  # of the enrolments and roles

    @property
    def member(self) -> Member | None:
        """The enrolment used for checking in: the first still consented to, when someone has
        several (else the first, whose withdrawal the check-in then explains)."""
        consented = (m for m in self.members if m.withdrawn_at is None)
        return next(consented, self.members[0] if self.members else None)

    @property
    def org_language(self) -> str | None:
        return self.org.language if self.org else None

    def language(self, hint: str | None) -> str:
        """The language they are answered in, given their channel's hint (`choose_language`)."""
        chosen = self.account.language if self.account is not None else None
        return choose_language(chosen, hint, self.org_language)

    @property
    def account_id(self) -> int | None:
        return self.account.id if self.account is not None else None

    @property
    def actor(self) -> str:
        """Who they are in the audit trail: "channel:external id"."""
        return f"{self.channel}:{self.external_id}"

    @property
    def telegram_id(self) -> int:
        """Their Telegram user id, for the Telegram adapter (their private chat's id too)."""
        if self.channel != TELEGRAM:
            raise ValueError(f"a visitor from {self.channel}, not from Telegram")
        return int(self.external_id)

    async def ensure_account(self, repo: Repo, now: datetime) -> Account:
        """Their account, made now (with its identity) if they had none."""
        if self.account is None:
            self.account = await repo.accounts.ensure(
                channel=self.channel, external_id=self.external_id, now=now
            )
        return self.account


async def load_visitors(
    repo: Repo, *, channel: str, external_ids: Sequence[str]
) -> dict[str, Visitor]:
    """Accounts, enrolments, roles and organisations of several people of one channel in (at
    most) two queries: identities with their accounts and enrolments, then the accounts'
    roles (none for people Daka has no account of)."""
    ids = list(dict.fromkeys(external_ids))
    visitors = {eid: Visitor(channel=channel, external_id=eid, account=None) for eid in ids}
    found = await repo.accounts.with_enrolments(channel=channel, external_ids=ids)
    by_account: dict[int, Visitor] = {}
    for eid, (account, _) in found.items():
        assert account.id is not None
        visitors[eid].account = account
        by_account[account.id] = visitors[eid]
    if not by_account:
        return visitors
    for eid, (account, enrolments) in found.items():
        visitor = visitors[eid]
        if by_account[account.id or 0] is not visitor:
            continue  # an account of two of them: its enrolments go to one, as its roles
        for member, org in enrolments:
            visitor.members.append(member)
            visitor.org = visitor.org or org
            visitor.orgs.setdefault(member.org_id, org)
    for grant, org in await repo.roles.active_many(account_ids=list(by_account)):
        visitor = by_account[grant.account_id]
        visitor.roles.append(grant)
        visitor.org = visitor.org or org
        visitor.orgs.setdefault(grant.org_id, org)
    return visitors


@dataclass(slots=True)
class Turn:
    """Everything the core needs to answer one input; the adapter builds it per update.

    `channels` are the deployment's (those it has a courier for): the letters a turn writes
    (an alert, a nudge) reach people on each of them. An adapter that does not say gets the
    channel the person wrote from, which is served wherever they can write."""

    person: Person
    visitor: Visitor
    repo: Repo
    clock: Clock
    state: State
    out: Out
    update_id: int | None = None  # the channel's id of the update, for idempotent writes
    channels: frozenset[str] = frozenset()

    @property
    def letter_channels(self) -> frozenset[str]:
        """Where the letters this turn writes are addressed."""
        return self.channels or frozenset((self.person.channel,))
