"""Roster entries: imported from a roster file, bound to an account on enrolment."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import columns_of, detached_once
from storage.models import Identity, Member, Organisation, Unit
from storage.repos.units import UnitRepo

# Built once (each batch of turns reads its visitors' enrolments). The members are the
# session's objects (enrolment and withdrawal change them); their organisations, which the
# turns only read, are rows (`detached`).
_ENROLMENTS = (
    select(Member, *columns_of(Organisation))
    .join(Organisation, col(Organisation.id) == col(Member.org_id))
    .where(col(Member.account_id).in_(bindparam("ids", expanding=True)), col(Member.active))
    .order_by(col(Member.id))
)


@dataclass(frozen=True)
class RosterRow:
    """One line of a roster file, already validated."""

    line: int
    unit: str
    member_id: str
    name: str


@dataclass(frozen=True)
class RosterResult:
    added: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class MemberRow:
    member: Member
    unit_path: str


class MemberRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def import_roster(self, *, org_id: int, rows: Iterable[RosterRow]) -> RosterResult:
        """Add new ids, update names and units of known ones; never duplicates."""
        units = UnitRepo(self.session)
        added = updated = unchanged = 0
        for row in rows:
            unit = await units.ensure(org_id=org_id, name_path=row.unit)
            member = await self.by_external(org_id=org_id, external_id=row.member_id)
            if member is None:
                assert unit.id is not None
                self.session.add(
                    Member(
                        org_id=org_id, unit_id=unit.id, external_id=row.member_id, name=row.name
                    )
                )
                added += 1
            elif member.name != row.name or member.unit_id != unit.id or not member.active:
                member.name, member.unit_id, member.active = row.name, unit.id or 0, True
                updated += 1
            else:
                unchanged += 1
            await self.session.flush()
        return RosterResult(added=added, updated=updated, unchanged=unchanged)

    async def by_external(self, *, org_id: int, external_id: str) -> Member | None:
        stmt = select(Member).where(Member.org_id == org_id, Member.external_id == external_id)
        return (await self.session.exec(stmt)).first()

    async def by_external_folded(self, *, org_id: int, external_id: str) -> Member | None:
        """The roster entry whose id is `external_id` ignoring case (a channel's user ids that
        are the roster's member ids, as WeCom's: case-insensitive); None when there is none,
        or two that differ only in case."""
        stmt = (
            select(Member)
            .where(
                Member.org_id == org_id,
                func.lower(col(Member.external_id)) == external_id.lower(),
            )
            .limit(2)
        )
        found = (await self.session.exec(stmt)).all()
        return found[0] if len(found) == 1 else None

    async def enrolments(
        self, *, account_ids: Sequence[int]
    ) -> Sequence[tuple[Member, Organisation]]:
        """The active roster entries bound to these accounts, with their organisations (to
        read: not the session's objects)."""
        rows = await self.session.exec(_ENROLMENTS, params={"ids": list(account_ids)})
        orgs: dict[int, Organisation] = {}
        found = []
        for member, *org in rows:
            found.append((member, detached_once(orgs, member.org_id, Organisation, org)))
        return found

    async def bind(self, *, member: Member, account_id: int, now: datetime) -> None:
        member.account_id = account_id
        member.enrolled_at = now
        await self.session.flush()

    async def mark_unreachable(
        self, *, member_ids: Collection[int], unless_on: Collection[str], now: datetime
    ) -> None:
        """A channel said these members cannot be reached there: they are unreachable from
        `now`, except those with an identity on one of the channels `unless_on` (still
        reached there), in one statement."""
        stmt = update(Member).where(
            col(Member.id).in_(list(member_ids)), col(Member.unreachable_since).is_(None)
        )
        if unless_on:
            elsewhere = select(Identity.id).where(
                col(Identity.account_id) == col(Member.account_id),
                col(Identity.channel).in_(list(unless_on)),
            )
            stmt = stmt.where(~elsewhere.exists())
        await self.session.exec(stmt.values(unreachable_since=now))

    async def listing(self, *, org_id: int, under: Unit | None = None) -> Sequence[MemberRow]:
        stmt = (
            select(Member, Unit.name_path)
            .join(Unit, col(Unit.id) == Member.unit_id)
            .where(Member.org_id == org_id)
        )
        if under is not None:
            stmt = stmt.where(col(Unit.path).startswith(under.path))
        stmt = stmt.order_by(col(Unit.name_path), col(Member.external_id))
        rows = (await self.session.exec(stmt)).all()
        return [MemberRow(member=m, unit_path=p) for m, p in rows]
