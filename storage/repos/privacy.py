"""A member's rights over their data (PIPL art. 15, 47): withdrawing consent, erasure (after the
organisation's grace period, or on request) and the legal hold that suspends it.

Erasure removes what the member answered — every answer of every check-in and of every
revision, the photos kept of their photo answers, the exact coordinates, the reasons an answer
was abnormal, the reasons given for their excuses — and the letters still addressed to them. It
keeps what the figures of past days count: the check-in rows themselves (the day was reported),
whether each was abnormal or outside the area, its province and city, and the excuses' days;
and the roster entry, which is the organisation's. So a past day's totals are the same before
and after."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import local_day
from domain.delivery import TELEGRAM
from domain.enrolment import CONSENT_VERSION
from storage.conversation_state import flush_steps
from storage.models import (
    Account,
    CheckIn,
    CheckInRevision,
    Consent,
    Excuse,
    FsmRecord,
    Identity,
    Member,
    Organisation,
    Outbox,
)
from storage.repos.accounts import own_erasures
from storage.repos.audit import AuditRepo
from storage.repos.photos import PhotoRepo
from storage.slots import alerts_about

Forget = Callable[[Sequence[tuple[str, str]]], Awaitable[None]]
"""Clears the conversations of these identities (channel, external id) kept outside the
database (Telegram's state in Redis): given by the composition root to whoever erases."""

GRACE_ACTOR = "withdrawal"  # who erases when the grace period is over, in the audit trail
HOLD_REASON_MAX = 200  # Member.hold_reason


class Held(ValueError):
    """The member is under a legal hold: nothing of theirs may be erased."""


@dataclass(frozen=True)
class Erased:
    """What an erasure cleared, for the audit trail and the admin."""

    checkins: int
    revisions: int
    excuses: int
    letters: int
    conversations: int = 0
    photos: int = 0
    # The person's identities (channel, external id): whatever keeps their conversations
    # outside the database (Telegram's state in Redis) is cleared of these too.
    identities: tuple[tuple[str, str], ...] = ()

    def detail(self) -> str:
        return (
            f"check-ins {self.checkins}, revisions {self.revisions}, excuses {self.excuses}, "
            f"letters {self.letters}, conversations {self.conversations}, "
            f"photos {self.photos}"
        )


def erasure_due(member: Member, org: Organisation) -> datetime | None:
    """When a withdrawn member's answers are to be erased (None: not withdrawn)."""
    if member.withdrawn_at is None:
        return None
    return member.withdrawn_at + timedelta(days=org.withdrawal_grace_days)


class PrivacyRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.audit = AuditRepo(session)

    async def withdraw(
        self, *, member: Member, org: Organisation, actor: str, now: datetime
    ) -> None:
        """The member withdraws consent: from now on they are neither asked nor counted, the
        letters waiting for them are not sent, and the withdrawal is kept with the consents."""
        assert member.id is not None and member.org_id == org.id
        member.withdrawn_at = now
        member.withdrawn_day = local_day(now, org.timezone)
        if member.account_id is not None:
            self.session.add(
                Consent(
                    account_id=member.account_id,
                    org_id=member.org_id,
                    version=CONSENT_VERSION,
                    accepted=False,
                    at=now,
                )
            )
        await self.session.exec(
            update(Outbox)
            .where(col(Outbox.member_id) == member.id, col(Outbox.status) == "pending")
            .values(status="skipped", error="withdrew consent")
        )
        await self.audit.log(
            org_id=member.org_id,
            actor=actor,
            action="consent.withdraw",
            subject=member.external_id,
            detail=f"erasure due {erasure_due(member, org):%Y-%m-%d %H:%M} UTC",
            now=now,
        )

    async def lock_person(self, *, member: Member) -> None:
        """Wait for the member's turns under way (they hold their account, see
        `AccountRepo.by_identities`), and hold it until the commit: what those turns wrote is
        then erased, and a turn that read them before the erasure commits and writes after it
        starts again (`ErasedMeanwhile`). First thing in an erasure's transaction (before
        `withdraw` too), so that it waits for no turn that waits for it."""
        if member.account_id is None:
            return
        stmt = select(col(Account.id)).where(col(Account.id) == member.account_id)
        await self.session.exec(stmt.with_for_update())

    async def erase(self, *, member: Member, actor: str, why: str, now: datetime) -> Erased:
        """Erase the member's answers now (see the module); raises `Held` under a legal hold."""
        if member.hold_reason is not None:
            raise Held(member.hold_reason)
        assert member.id is not None
        if member.account_id is not None:
            await self.lock_person(member=member)
            await self.session.exec(
                update(Account)
                .where(col(Account.id) == member.account_id)
                .values(erasures=col(Account.erasures) + 1)
            )
            own_erasures(self.session).add(member.account_id)
        checkins = await self.session.exec(
            update(CheckIn)
            .where(col(CheckIn.member_id) == member.id)
            .values(answers={}, reasons=[], latitude=None, longitude=None, accuracy_m=None)
        )
        revisions = await self.session.exec(
            update(CheckInRevision)
            .where(col(CheckInRevision.member_id) == member.id)
            .values(answers={})
        )
        excuses = await self.session.exec(
            update(Excuse).where(col(Excuse.member_id) == member.id).values(reason="")
        )
        letters = await self.session.exec(
            delete(Outbox).where(
                (col(Outbox.member_id) == member.id)
                | (
                    (col(Outbox.org_id) == member.org_id)
                    & (col(Outbox.kind) == "alert")
                    & col(Outbox.slot).like(alerts_about(member.id))
                )
            )
        )
        photos = await PhotoRepo(self.session).delete_member(member_id=member.id)
        conversations = 0
        identities: tuple[tuple[str, str], ...] = ()
        if member.account_id is not None:
            # A draft under way holds answers too: the person's conversation on each channel
            # kept in the database (Telegram's rows as aiogram keys a private chat, the
            # others' as storage.conversation_state does); state kept in Redis is the
            # caller's to clear (`identities`: scheduler.jobs.erase_withdrawn_now's `forget`).
            stmt = select(col(Identity.channel), col(Identity.external_id)).where(
                col(Identity.account_id) == member.account_id
            )
            identities = tuple((c, e) for c, e in (await self.session.exec(stmt)).all())
            keys = [
                f"fsm:{eid}:{eid}:default" if channel == TELEGRAM else f"{channel}:{eid}"
                for channel, eid in identities
            ]
            if keys:
                await flush_steps(self.session)  # the steps of turns before, as they left them
                gone = await self.session.exec(
                    delete(FsmRecord).where(col(FsmRecord.key).in_(keys))
                )
                conversations = int(gone.rowcount or 0)
        member.erased_at = now
        erased = Erased(
            checkins=int(checkins.rowcount or 0),
            revisions=int(revisions.rowcount or 0),
            excuses=int(excuses.rowcount or 0),
            letters=int(letters.rowcount or 0),
            conversations=conversations,
            photos=photos,
            identities=identities,
        )
        await self.audit.log(
            org_id=member.org_id,
            actor=actor,
            action="member.erase",
            subject=member.external_id,
            detail=f"{why}: {erased.detail()}",
            now=now,
        )
        return erased

    async def due(self, *, now: datetime) -> Sequence[tuple[Member, Organisation]]:
        """Withdrawn members whose grace period is over, not yet erased, not on hold."""
        stmt = (
            select(Member, Organisation)
            .join(Organisation, col(Organisation.id) == col(Member.org_id))
            .where(
                col(Member.withdrawn_at).is_not(None),
                col(Member.erased_at).is_(None),
                col(Member.hold_reason).is_(None),
            )
            .order_by(col(Member.id))
        )
        rows = (await self.session.exec(stmt)).all()
        return [(m, o) for m, o in rows if (erasure_due(m, o) or now) <= now]

    async def erase_due(self, *, now: datetime) -> list[tuple[str, str]]:
        """Erase every member whose grace period is over; returns (slug, member id) of each."""
        return [(slug, member_id) for slug, member_id, _ in await self.erasures(now=now)]

    async def erasures(self, *, now: datetime) -> list[tuple[str, str, Erased]]:
        """Erase every member whose grace period is over; returns (slug, member id, what was
        erased) of each."""
        done = []
        due = await self.due(now=now)
        # Everyone's account held first, in account order as turns take them: a batch holding
        # two of them cannot deadlock with the job (each `erase` then finds its own held).
        accounts = sorted({m.account_id for m, _ in due if m.account_id is not None})
        if accounts:
            held = select(col(Account.id)).where(col(Account.id).in_(accounts))
            await self.session.exec(held.order_by(col(Account.id)).with_for_update())
        for member, org in due:
            erased = await self.erase(
                member=member, actor=GRACE_ACTOR, why="grace period over", now=now
            )
            done.append((org.slug, member.external_id, erased))
        return done

    async def hold(self, *, member: Member, reason: str, actor: str, now: datetime) -> None:
        """A legal hold: nothing of the member's is erased or expires until it is cleared."""
        member.hold_reason = reason[:HOLD_REASON_MAX]
        member.held_at = now
        await self.audit.log(
            org_id=member.org_id,
            actor=actor,
            action="hold.set",
            subject=member.external_id,
            detail=member.hold_reason,
            now=now,
        )

    async def release(self, *, member: Member, reason: str, actor: str, now: datetime) -> None:
        """The hold ends; erasure and retention catch up at their next run."""
        member.hold_reason = None
        member.held_at = None
        await self.audit.log(
            org_id=member.org_id,
            actor=actor,
            action="hold.clear",
            subject=member.external_id,
            detail=reason[:1000],
            now=now,
        )
