"""What one manager may read and change — one organisation, whole or the union of the subtrees of
their grants — and the one question every manager view asks before reading anything: is this
unit, member or roster line inside? Each answer is one query through the unit closure table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from domain.clock import Clock, local_day
from storage.models import Member, Organisation, RoleGrant, Unit, UnitLink
from storage.repos.members import RosterRow

MANAGER_ROLES = ("manager", "admin")
MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns: 32 bits on PostgreSQL
MAX_EXTERNAL_ID = 64  # Member.external_id
ROSTER_CHUNK = 500  # member ids per look-up (SQLite's bound-parameter limit is far above)


@dataclass(frozen=True)
class Scope:
    """A manager's reach for the update being handled, resolved once from their grants.

    `unit_ids` are the granted units of `org` (None: the whole organisation); `orgs` every
    organisation the person manages, for offering another when there are several."""

    org: Organisation
    unit_ids: tuple[int, ...] | None
    orgs: tuple[Organisation, ...] = ()

    @property
    def org_id(self) -> int:
        assert self.org.id is not None
        return self.org.id

    @property
    def whole(self) -> bool:
        return self.unit_ids is None

    @property
    def label(self) -> str:
        """The scope in the audit trail: `0` for the whole organisation, else the unit ids."""
        return "0" if self.unit_ids is None else ",".join(map(str, self.unit_ids))

    def today(self, clock: Clock) -> date:
        """The organisation's local day: every "today" of a manager's view."""
        return local_day(clock.now(), self.org.timezone)

    def _inside(self, unit_column: int | None) -> list[ColumnElement[bool]]:
        """Conditions putting a unit id column inside the scope's subtrees."""
        if self.unit_ids is None:
            return []
        return [col(unit_column).in_(self._below(self.unit_ids))]

    @staticmethod
    def _below(unit_ids: Sequence[int]) -> SelectOfScalar[int]:
        """The closure's descendants of the given units, themselves included."""
        return select(col(UnitLink.descendant_id)).where(
            col(UnitLink.ancestor_id).in_(list(unit_ids))
        )

    async def unit(self, session: AsyncSession, unit_id: int) -> Unit | None:
        """The unit, when it is this organisation's and inside the scope; None otherwise (and
        for ids no row can have), without telling which."""
        if not 0 < unit_id <= MAX_ROW_ID:
            return None
        stmt = select(Unit).where(
            col(Unit.id) == unit_id, col(Unit.org_id) == self.org_id, *self._inside(Unit.id)
        )
        return (await session.exec(stmt)).first()

    async def member(
        self,
        session: AsyncSession,
        *,
        member_id: int | None = None,
        external_id: str | None = None,
    ) -> Member | None:
        """The roster entry with this row id or member id, when it lies inside the scope."""
        stmt = select(Member).where(
            col(Member.org_id) == self.org_id, *self._inside(Member.unit_id)
        )
        if member_id is not None:
            if not 0 < member_id <= MAX_ROW_ID:
                return None
            stmt = stmt.where(col(Member.id) == member_id)
        elif external_id is not None:
            if not external_id or len(external_id) > MAX_EXTERNAL_ID:
                return None
            stmt = stmt.where(col(Member.external_id) == external_id)
        else:
            raise TypeError("member() needs member_id or external_id")
        return (await session.exec(stmt)).first()

    async def tops(self, session: AsyncSession) -> list[Unit]:
        """The outermost units of the scope, by name path: the organisation's roots, or the
        granted units that lie under no other grant."""
        stmt = select(Unit).where(col(Unit.org_id) == self.org_id)
        if self.unit_ids is None:
            stmt = stmt.where(col(Unit.parent_id).is_(None))
        else:
            stmt = stmt.where(col(Unit.id).in_(list(self.unit_ids)))
        units = list((await session.exec(stmt)).all())
        paths = [u.path for u in units]
        outermost = [
            u for u in units if not any(u.path != p and u.path.startswith(p) for p in paths)
        ]
        return sorted(outermost, key=lambda u: u.name_path)

    async def under(self, session: AsyncSession) -> list[int] | None:
        """The `under` every aggregate, export and chart of this scope is read with: None for
        the whole organisation, else the granted units that lie under no other grant (disjoint
        subtrees, so that totals count nobody twice). The one way from a scope to `under`."""
        if self.unit_ids is None:
            return None
        return [u.id for u in await self.tops(session) if u.id is not None]

    async def roster_rows(
        self, session: AsyncSession, rows: Sequence[RosterRow]
    ) -> tuple[list[RosterRow], list[int]]:
        """The roster lines this scope may write, and the line numbers of the others: a unit
        path outside the scope, or a member id that belongs to someone outside it. Both are one
        refusal, so an upload tells nothing about other units."""
        if self.unit_ids is None:
            return list(rows), []
        prefixes = [u.name_path for u in await self.tops(session)]
        inside = [
            r for r in rows if any(r.unit == p or r.unit.startswith(p + "/") for p in prefixes)
        ]
        foreign: set[str] = set()
        ids = [r.member_id for r in inside]
        for start in range(0, len(ids), ROSTER_CHUNK):
            outside = select(col(Member.external_id)).where(
                col(Member.org_id) == self.org_id,
                col(Member.external_id).in_(ids[start : start + ROSTER_CHUNK]),
                col(Member.unit_id).not_in(self._below(self.unit_ids)),
            )
            foreign.update((await session.exec(outside)).all())
        good = [r for r in inside if r.member_id not in foreign]
        kept = {r.line for r in good}
        return good, sorted(r.line for r in rows if r.line not in kept)


def manager_orgs(
    grants: Iterable[RoleGrant], orgs: Mapping[int, Organisation]
) -> list[Organisation]:
    """The organisations someone manages, in the order of their grants."""
    ids = dict.fromkeys(g.org_id for g in grants if g.role in MANAGER_ROLES and g.org_id in orgs)
    return [orgs[i] for i in ids]


def resolve_scope(
    grants: Sequence[RoleGrant], orgs: Mapping[int, Organisation], chosen_org: int | None
) -> Scope | None:
    """The scope of someone's manager and admin grants in one organisation: the only one, or
    the one they chose when they manage several. None: no such grant, or no choice made yet."""
    managed = manager_orgs(grants, orgs)
    if not managed:
        return None
    if len(managed) == 1:
        org = managed[0]
    else:
        chosen = [o for o in managed if o.id == chosen_org]
        if not chosen:
            return None
        org = chosen[0]
    mine = [g for g in grants if g.role in MANAGER_ROLES and g.org_id == org.id]
    units = (
        None
        if any(g.unit_id is None for g in mine)
        else tuple(dict.fromkeys(g.unit_id for g in mine if g.unit_id is not None))
    )
    return Scope(org=org, unit_ids=units, orgs=tuple(managed))
