"""Day figures and member lists for managers, reminders and reports: SQL over the unit closure
table, the same statements on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Executable,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    or_,
    select,
)
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import DayStatus, Figures
from storage.models import Account, CheckIn, Excuse, Member, Unit, UnitLink


def _status(
    day: date, off_units: Collection[int], enrolled_by: datetime | None = None
) -> ColumnElement[str]:
    """The `domain.status.day_status` rule, as a SQL expression over member ⟕ check-in. With
    `enrolled_by` (the end of `day`), who enrolled later counts as not enrolled on that day."""
    excused = exists().where(
        col(Excuse.member_id) == col(Member.id),
        col(Excuse.first_day) <= day,
        col(Excuse.last_day) >= day,
    )
    off: ColumnElement[bool] = col(Member.unit_id).in_(list(off_units)) if off_units else false()
    not_enrolled: ColumnElement[bool] = col(Member.telegram_id).is_(None)
    if enrolled_by is not None:
        not_enrolled = not_enrolled | (col(Member.enrolled_at) > enrolled_by)
    return case(
        (col(CheckIn.id).is_not(None), literal(DayStatus.REPORTED.value)),
        (not_enrolled, literal(DayStatus.NOT_ENROLLED.value)),
        (excused, literal(DayStatus.EXCUSED.value)),
        (off, literal(DayStatus.OFF.value)),
        else_=literal(DayStatus.MISSING.value),
    )


async def _rows(session: AsyncSession, stmt: Executable) -> list[tuple[Any, ...]]:
    """Run a Core statement in the session's transaction (SQLModel's `exec` is typed for ORM)."""
    connection = await session.connection()
    return [tuple(row) for row in (await connection.execute(stmt)).all()]


def _checkin_join(day: date) -> ColumnElement[bool]:
    return and_(col(CheckIn.member_id) == col(Member.id), col(CheckIn.local_day) == day)


async def unit_figures(
    session: AsyncSession,
    *,
    units: Sequence[Unit],
    day: date,
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
) -> list[Figures]:
    """Figures of each given unit with its whole subtree, in the order given (zeros included)."""
    ids = [u.id for u in units if u.id is not None]
    if not ids:
        return []
    status = _status(day, off_units, enrolled_by).label("status")
    per_member = (
        select(
            col(UnitLink.ancestor_id).label("unit_id"),
            status,
            col(CheckIn.abnormal).label("abnormal"),
            col(Member.unreachable_since).label("unreachable_since"),
        )
        .select_from(UnitLink)
        .join(Member, and_(col(Member.unit_id) == col(UnitLink.descendant_id), col(Member.active)))
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(UnitLink.ancestor_id).in_(ids))
        .subquery()
    )

    def count(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    s = per_member.c.status
    stmt = select(
        per_member.c.unit_id,
        func.count(),
        count(s == DayStatus.NOT_ENROLLED.value),
        count(s == DayStatus.EXCUSED.value),
        count(s == DayStatus.OFF.value),
        count(s == DayStatus.REPORTED.value),
        count(s == DayStatus.MISSING.value),
        count(and_(s == DayStatus.MISSING.value, per_member.c.unreachable_since.is_not(None))),
        count(per_member.c.abnormal == True),  # noqa: E712 (SQL, not Python)
    ).group_by(per_member.c.unit_id)
    rows = {row[0]: row[1:] for row in await _rows(session, stmt)}
    result = []
    for unit in units:
        values = rows.get(unit.id)
        if values is None:
            result.append(Figures(unit_id=unit.id, name=unit.name))
            continue
        roster, not_enrolled, excused, off, reported, missing, unreachable, abnormal = (
            int(v) for v in values
        )
        result.append(
            Figures(
                unit_id=unit.id,
                name=unit.name,
                roster=roster,
                not_enrolled=not_enrolled,
                excused=excused,
                off=off,
                reported=reported,
                missing=missing,
                unreachable=unreachable,
                abnormal=abnormal,
            )
        )
    return result


def total(name: str, parts: Sequence[Figures]) -> Figures:
    """The sum of disjoint units' figures (the roots of an organisation, say)."""
    return Figures(
        unit_id=None,
        name=name,
        roster=sum(f.roster for f in parts),
        not_enrolled=sum(f.not_enrolled for f in parts),
        excused=sum(f.excused for f in parts),
        off=sum(f.off for f in parts),
        reported=sum(f.reported for f in parts),
        missing=sum(f.missing for f in parts),
        unreachable=sum(f.unreachable for f in parts),
        abnormal=sum(f.abnormal for f in parts),
    )


@dataclass(frozen=True)
class MemberDay:
    """One roster entry on one day, as lists and exports show it."""

    member_id: int
    external_id: str
    name: str
    unit_id: int
    unit_path: str
    telegram_id: int | None
    language: str | None
    status: DayStatus
    unreachable: bool
    abnormal: bool
    reasons: list[str]
    submitted_at: datetime | None
    latitude: float | None
    longitude: float | None
    province: str | None
    city: str | None
    answers: dict[str, Any] | None


async def member_days(
    session: AsyncSession,
    *,
    org_id: int,
    day: date,
    under: Sequence[int] | None = None,
    unit_ids: Collection[int] | None = None,
    statuses: Collection[DayStatus] | None = None,
    abnormal_only: bool = False,
    reachable_only: bool = False,
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MemberDay]:
    """Members of `org_id` on `day`: under the given units' subtrees, or in exactly `unit_ids`,
    filtered by status; ordered by unit path and member id."""
    status = _status(day, off_units, enrolled_by).label("status")
    stmt = (
        select(
            col(Member.id),
            col(Member.external_id),
            col(Member.name),
            col(Member.unit_id),
            col(Unit.name_path),
            col(Member.telegram_id),
            col(Account.language),
            status,
            col(Member.unreachable_since),
            col(CheckIn.abnormal),
            col(CheckIn.reasons),
            col(CheckIn.submitted_at),
            col(CheckIn.latitude),
            col(CheckIn.longitude),
            col(CheckIn.province),
            col(CheckIn.city),
            col(CheckIn.answers),
        )
        .select_from(Member)
        .join(Unit, col(Unit.id) == col(Member.unit_id))
        .outerjoin(Account, col(Account.telegram_id) == col(Member.telegram_id))
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(Member.org_id) == org_id, col(Member.active))
    )
    if under is not None:
        stmt = stmt.where(
            exists().where(
                col(UnitLink.descendant_id) == col(Member.unit_id),
                col(UnitLink.ancestor_id).in_(list(under)),
            )
        )
    if unit_ids is not None:
        stmt = stmt.where(col(Member.unit_id).in_(list(unit_ids)))
    if statuses is not None:
        stmt = stmt.where(status.in_([s.value for s in statuses]))
    if abnormal_only:
        stmt = stmt.where(col(CheckIn.abnormal))
    if reachable_only:
        stmt = stmt.where(col(Member.unreachable_since).is_(None))
    stmt = stmt.order_by(col(Unit.name_path), col(Member.external_id)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [
        MemberDay(
            member_id=row[0],
            external_id=row[1],
            name=row[2],
            unit_id=row[3],
            unit_path=row[4],
            telegram_id=row[5],
            language=row[6],
            status=DayStatus(row[7]),
            unreachable=row[8] is not None,
            abnormal=bool(row[9]),
            reasons=list(row[10] or []),
            submitted_at=_aware(row[11]),
            latitude=row[12],
            longitude=row[13],
            province=row[14],
            city=row[15],
            answers=dict(row[16]) if row[16] is not None else None,
        )
        for row in await _rows(session, stmt)
    ]


def _aware(value: datetime | None) -> datetime | None:
    """Core rows skip the ORM type's result processing on some drivers: make UTC explicit."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def count_member_days(
    session: AsyncSession,
    *,
    org_id: int,
    day: date,
    under: Sequence[int],
    statuses: Collection[DayStatus],
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
) -> int:
    """How many rows `member_days` would list (for paging)."""
    status = _status(day, off_units, enrolled_by)
    stmt = (
        select(func.count())
        .select_from(Member)
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(Member.org_id) == org_id, col(Member.active))
        .where(
            exists().where(
                col(UnitLink.descendant_id) == col(Member.unit_id),
                col(UnitLink.ancestor_id).in_(list(under)),
            )
        )
        .where(or_(*[status == s.value for s in statuses]))
    )
    return int((await _rows(session, stmt))[0][0])


async def place_counts(
    session: AsyncSession, *, org_id: int, day: date, under: Sequence[int]
) -> list[tuple[str, str, int, int]]:
    """Where the scope checked in from on `day`: (province, city, check-ins, outside geofence),
    most first."""
    province = func.coalesce(col(CheckIn.province), "")
    city = func.coalesce(col(CheckIn.city), "")
    stmt = (
        select(
            province,
            city,
            func.count(),
            func.coalesce(func.sum(case((col(CheckIn.outside_geofence), 1), else_=0)), 0),
        )
        .select_from(CheckIn)
        .where(col(CheckIn.org_id) == org_id, col(CheckIn.local_day) == day)
        .where(
            exists().where(
                col(UnitLink.descendant_id) == col(CheckIn.unit_id),
                col(UnitLink.ancestor_id).in_(list(under)),
            )
        )
        .group_by(province, city)
        .order_by(func.count().desc(), province, city)
    )
    return [(str(p), str(c), int(n), int(o)) for p, c, n, o in await _rows(session, stmt)]
