"""Accounts: the people Daka knows, found by their id on a channel (`Identity`), with their
enrolment tries and consents."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from storage.db import columns_of, core_rows, detached_once
from storage.models import Account, Consent, EnrolAttempt, Identity, Member, Organisation

_S = TypeVar("_S", bound=Select[*tuple[Any, ...]])


def _of_identities(stmt: _S) -> _S:
    """`stmt` (selecting from Identity) for the accounts of some identities of a channel, in
    account order. Locked until the turn commits (PostgreSQL; SQLite has one writer): an
    erasure (`PrivacyRepo.erase`) waits for the turns under way of the person it erases, and
    what they write is then erased too. In id order, as erasures lock them."""
    return (
        stmt.join(Account, col(Account.id) == col(Identity.account_id))
        .where(
            col(Identity.channel) == bindparam("channel"),
            col(Identity.external_id).in_(bindparam("ids", expanding=True)),
        )
        .order_by(col(Account.id))
        .with_for_update(of=Account, key_share=True)
    )


# Built once, as the next.
_BY_IDENTITIES = _of_identities(select(Identity.external_id, Account))
# The same accounts, locked as above, with their active enrolments (the session's members)
# and the enrolments' organisations (Core columns: to read): a batch's visitors in one
# statement rather than two.
_WITH_ENROLMENTS = (
    _of_identities(select(Identity.external_id, Account, Member, *columns_of(Organisation)))
    .outerjoin(Member, and_(col(Member.account_id) == col(Account.id), col(Member.active)))
    .outerjoin(Organisation, col(Organisation.id) == col(Member.org_id))
    .order_by(col(Member.id))
)
# Built once (a batch's last statement before its commit; see storage.repo's check-ins).
_ERASURES = select(col(Account.id), col(Account.erasures)).where(
    col(Account.id).in_(bindparam("ids", expanding=True))
)


class ErasedMeanwhile(Exception):
    """A person's data was erased while a turn that had read them was under way (an erasure
    in another process): the turn's writes would bring back what was erased, so they are
    rolled back and the turn runs again, from what is left.

    PostgreSQL never gets here (the turn's lock on the account makes the erasure wait); SQLite
    does when the erasure committed between the turn's reads and its first write (after it,
    the turn is the one writer until its commit)."""

    def __init__(self, account_ids: Sequence[int]) -> None:
        super().__init__(f"accounts {list(account_ids)} erased while their turn was under way")
        self.account_ids = tuple(account_ids)


def erasures_seen(accounts: Iterable[Account | None]) -> dict[int, int]:
    """What a turn read of these accounts' erasures, for `AccountRepo.check_unerased`."""
    return {a.id: a.erasures for a in accounts if a is not None and a.id is not None}


def own_erasures(session: AsyncSession) -> set[int]:
    """The accounts erased in this session's transaction: a turn that erases its own person
    (a withdrawal where the organisation gives no grace period) is not erased "meanwhile"."""
    erased: set[int] = session.info.setdefault("daka_erased_accounts", set())
    return erased


@dataclass(frozen=True)
class Contact:
    """Where an account is reached on one channel, and the language it chose."""

    account_id: int
    channel: str
    external_id: str
    language: str | None


class AccountRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, account_id: int) -> Account | None:
        return await self.session.get(Account, account_id)

    async def by_identity(self, *, channel: str, external_id: str) -> Account | None:
        return (await self.by_identities(channel=channel, external_ids=[external_id])).get(
            external_id
        )

    async def by_identities(
        self, *, channel: str, external_ids: Collection[str]
    ) -> dict[str, Account]:
        """The accounts of several people of one channel, by their ids there, in one query
        (the accounts of a batch of updates)."""
        if not external_ids:
            return {}
        params = {"channel": channel, "ids": list(external_ids)}
        rows = await self.session.exec(_BY_IDENTITIES, params=params)
        return {external_id: account for external_id, account in rows}

    async def with_enrolments(
        self, *, channel: str, external_ids: Collection[str]
    ) -> dict[str, tuple[Account, list[tuple[Member, Organisation]]]]:
        """`by_identities`, each account with its active roster entries (in the order they
        were made) and their organisations, in one query: who the updates of a batch are
        from. The organisations are to read, not the session's objects."""
        if not external_ids:
            return {}
        params = {"channel": channel, "ids": list(external_ids)}
        found: dict[str, tuple[Account, list[tuple[Member, Organisation]]]] = {}
        orgs: dict[int, Organisation] = {}
        for external_id, account, member, *org in await self.session.exec(
            _WITH_ENROLMENTS, params=params
        ):
            enrolments = found.setdefault(external_id, (account, []))[1]
            if member is None:
                continue
            enrolments.append((member, detached_once(orgs, member.org_id, Organisation, org)))
        return found

    async def check_unerased(self, *, seen: Mapping[int, int]) -> None:
        """Raises `ErasedMeanwhile` when one of these accounts (id: its `erasures` as the turn
        read it) was erased since; called after the turn's writes, just before its commit."""
        others = {a: n for a, n in seen.items() if a not in own_erasures(self.session)}
        if not others:
            return
        now = dict(await core_rows(self.session, _ERASURES, {"ids": sorted(others)}))
        changed = [a for a, erasures in others.items() if now.get(a, erasures) != erasures]
        if changed:
            raise ErasedMeanwhile(changed)

    async def ensure(self, *, channel: str, external_id: str, now: datetime) -> Account:
        """The account of this id on this channel, created with its identity when new."""
        account = await self.by_identity(channel=channel, external_id=external_id)
        if account is None:
            account = Account(first_seen=now)
            self.session.add(account)
            await self.session.flush()
            assert account.id is not None
            self.session.add(
                Identity(
                    channel=channel, external_id=external_id, account_id=account.id, created_at=now
                )
            )
            await self.session.flush()
        return account

    async def contacts(self, *, channel: str, account_ids: Collection[int]) -> dict[int, Contact]:
        """Where to reach these accounts on `channel` (those it knows), in one query: the
        recipients of a round, or the managers told of an abnormal check-in."""
        if not account_ids:
            return {}
        reach = await self.reach(channels=[channel], account_ids=account_ids)
        return {account_id: found[0] for account_id, found in reach.items()}

    async def reach(
        self, *, channels: Collection[str], account_ids: Collection[int]
    ) -> dict[int, list[Contact]]:
        """Where to reach these accounts on any of `channels`, in one query: one contact per
        account and channel (its first identity there), in the order they were bound; the
        recipients of a round, of an alert or of a nudge."""
        if not account_ids or not channels:
            return {}
        stmt = (
            select(
                col(Identity.account_id),
                col(Identity.channel),
                col(Identity.external_id),
                col(Account.language),
            )
            .join(Account, col(Account.id) == col(Identity.account_id))
            .where(
                col(Identity.channel).in_(list(channels)),
                col(Identity.account_id).in_(list(account_ids)),
            )
            .order_by(col(Identity.id))
        )
        found: dict[int, dict[str, Contact]] = {}
        for account_id, channel, external_id, language in await self.session.exec(stmt):
            by_channel = found.setdefault(account_id, {})
            if channel not in by_channel:
                by_channel[channel] = Contact(account_id, channel, external_id, language)
        return {account_id: list(by_channel.values()) for account_id, by_channel in found.items()}

    async def contact(self, *, channel: str, account_id: int | None) -> Contact | None:
        """Where to reach one account on `channel` (None: not there, or no account)."""
        if account_id is None:
            return None
        return (await self.contacts(channel=channel, account_ids=[account_id])).get(account_id)

    async def record_attempt(
        self, *, account_id: int, org_id: int, external_id: str, outcome: str, now: datetime
    ) -> None:
        self.session.add(
            EnrolAttempt(
                account_id=account_id,
                org_id=org_id,
                external_id=external_id[:64],
                outcome=outcome,
                at=now,
            )
        )
        await self.session.flush()

    async def record_consent(
        self, *, account_id: int, org_id: int, version: int, accepted: bool, now: datetime
    ) -> None:
        self.session.add(
            Consent(
                account_id=account_id, org_id=org_id, version=version, accepted=accepted, at=now
            )
        )
        await self.session.flush()

    async def consent(self, *, account_id: int, org_id: int) -> Consent | None:
        stmt = (
            select(Consent)
            .where(Consent.account_id == account_id, Consent.org_id == org_id)
            .order_by(col(Consent.id).desc())
        )
        return (await self.session.exec(stmt)).first()
