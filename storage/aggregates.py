"""Day figures and member lists for managers, reminders and reports: SQL over the unit closure
table, the same statements on SQLite and PostgreSQL.

One module past 400 lines on purpose: every figure managers, reminders and reports show is
counted here by the same rules (docs/operations.md, "How figures are counted"), so a rule
changes in one place and the statements are compared side by side."""

from __future__ import annotations

import gc
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
)
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import DayStatus, Figures
from storage.db import core_rows
from storage.models import Account, CheckIn, Excuse, Member, Unit, UnitLink
from storage.types import UTCDateTime

# The figures' own status, beside `DayStatus`: checked in on a day off of the member's unit.
# Member lists show such a member as reported (a check-in always shows); the figures keep them
# out of `expected` and the rate (`Figures.voluntary`).
VOLUNTARY = "voluntary"


def _status(
    day: date | ColumnElement[date],
    off: ColumnElement[bool],
    enrolled_by: datetime | ColumnElement[datetime] | None = None,
    *,
    voluntary: bool = False,
) -> ColumnElement[str]:
    """The `domain.status.day_status` rule, as a SQL expression over member ⟕ check-in; `off`
    tells whether the member's unit is off that day (`_off`). With `enrolled_by` (the end of
    `day`), who enrolled later counts as not enrolled on that day. Who withdrew consent on
    `day` or before is withdrawn, unless they had checked in that day: a withdrawal never
    changes the days before it. With `voluntary`, the figures'
    rule (docs/operations.md, "How figures are counted"): a check-in on a day off of the member's
    unit is `VOLUNTARY` rather than reported, so that checking in on a day off does not make a
    member expected. (An excused member who checks in is back, and reported.)"""
    excused = exists().where(
        col(Excuse.member_id) == col(Member.id),
        col(Excuse.first_day) <= day,
        col(Excuse.last_day) >= day,
    )
    withdrawn = col(Member.withdrawn_day).is_not(None) & (col(Member.withdrawn_day) <= day)
    not_enrolled: ColumnElement[bool] = col(Member.account_id).is_(None)
    if enrolled_by is not None:
        not_enrolled = not_enrolled | (col(Member.enrolled_at) > enrolled_by)
    checked_in = col(CheckIn.id).is_not(None)
    if voluntary:
        # `off` once in the text: it holds the day's off units, one bound value each.
        return case(
            (
                off,
                case(
                    (checked_in, _constant(VOLUNTARY)),
                    (withdrawn, _constant(DayStatus.WITHDRAWN)),
                    (not_enrolled, _constant(DayStatus.NOT_ENROLLED)),
                    (excused, _constant(DayStatus.EXCUSED)),
                    else_=_constant(DayStatus.OFF),
                ),
            ),
            else_=case(
                (checked_in, _constant(DayStatus.REPORTED)),
                (withdrawn, _constant(DayStatus.WITHDRAWN)),
                (not_enrolled, _constant(DayStatus.NOT_ENROLLED)),
                (excused, _constant(DayStatus.EXCUSED)),
                else_=_constant(DayStatus.MISSING),
            ),
        )
    return case(
        (checked_in, _constant(DayStatus.REPORTED)),
        (withdrawn, _constant(DayStatus.WITHDRAWN)),
        (not_enrolled, _constant(DayStatus.NOT_ENROLLED)),
        (excused, _constant(DayStatus.EXCUSED)),
        (off, _constant(DayStatus.OFF)),
        else_=_constant(DayStatus.MISSING),
    )


def _constant(status: str) -> ColumnElement[str]:
    """A status as SQL text in the statement itself, not a bound parameter: the statements are
    cached, and each bound constant is one more value to process on every run (the figures
    statement had some thirty, for a class of 50 a good part of what is not SQLite's work)."""
    value = str(status)
    assert value.isidentifier(), value  # nothing to quote or escape
    return literal_column(f"'{value}'", String())


def _off(off_units: Collection[int]) -> ColumnElement[bool]:
    return col(Member.unit_id).in_(list(off_units)) if off_units else false()


def _checkin_join(day: date | ColumnElement[date]) -> ColumnElement[bool]:
    """The member's check-in of `day`. The organisation adds nothing (a check-in is its
    member's organisation's) but lets the planner probe ix_checkin_org_day_member, where one
    day's entries lie together and which holds what the figures read, instead of the (member,
    day) key, whose entries of one day are spread over the whole index: for 100,000 members,
    100,000 probes into a few MiB rather than into all of it, and no table row read."""
    return and_(
        col(CheckIn.org_id) == col(Member.org_id),
        col(CheckIn.member_id) == col(Member.id),
        col(CheckIn.local_day) == day,
    )


def _under(units: Sequence[int]) -> ColumnElement[bool]:
    """Members in the given units' subtrees: an IN over the closure table, which is evaluated
    once, rather than a correlated EXISTS, which probes the closure for every member and every
    unit (20 probes a member for the roots of an organisation of 20 colleges)."""
    return col(Member.unit_id).in_(
        select(col(UnitLink.descendant_id)).where(col(UnitLink.ancestor_id).in_(list(units)))
    )


def _per_member_status(
    day: ColumnElement[date], off: bool, enrolled_by: bool
) -> ColumnElement[str]:
    """The figures' status of a member on the bound `day` (`_status` with `voluntary`), the
    day's off units and the enrolment deadline bound when the statement has them."""
    return _status(
        day,
        col(Member.unit_id).in_(bindparam("off", expanding=True)) if off else false(),
        bindparam("enrolled_by", type_=UTCDateTime()) if enrolled_by else None,
        voluntary=off,  # without units off that day nobody checks in on a day off
    ).label("status")


def _counts(per_member: Any, *, off: bool) -> list[Any]:
    """The figures' counts over rows of (status, abnormal, unreachable_since), in
    `_figures_from`'s order after the roster."""
    one: ColumnElement[int] = literal_column("1", Integer())  # in the text, as `_constant`
    zero: ColumnElement[int] = literal_column("0", Integer())

    def count(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, one), else_=zero)), zero)

    s = per_member.c.status
    return [
        count(s == _constant(DayStatus.NOT_ENROLLED)),
        count(s == _constant(DayStatus.EXCUSED)),
        count(s == _constant(DayStatus.OFF)),
        count(s == _constant(DayStatus.REPORTED)),
        count(s == _constant(DayStatus.MISSING)),
        count(
            and_(s == _constant(DayStatus.MISSING), per_member.c.unreachable_since.is_not(None))
        ),
        count(per_member.c.abnormal == True),  # noqa: E712 (SQL, not Python)
        count(s == _constant(VOLUNTARY)) if off else zero,  # none without a day off
        count(s == _constant(DayStatus.WITHDRAWN)),
    ]


@cache
def _figures_statement(*, off: bool, enrolled_by: bool) -> Select[Any]:
    """`unit_figures`' statement for one shape (units off or not, an enrolment deadline or not),
    built once and run with bound values (ids, day, off, enrolled_by): building it anew took
    1.3 ms a call, more than running it for a class of 50."""
    day = bindparam("day", type_=Date())
    per_member = (
        select(
            col(UnitLink.ancestor_id).label("unit_id"),
            _per_member_status(day, off, enrolled_by),
            col(CheckIn.abnormal).label("abnormal"),
            col(Member.unreachable_since).label("unreachable_since"),
        )
        .select_from(UnitLink)
        .join(Member, and_(col(Member.unit_id) == col(UnitLink.descendant_id), col(Member.active)))
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(UnitLink.ancestor_id).in_(bindparam("ids", expanding=True)))
        .subquery()
    )
    counts = _counts(per_member, off=off)
    stmt: Select[Any] = select(per_member.c.unit_id, func.count(), *counts)
    return stmt.group_by(per_member.c.unit_id)


@cache
def _tree_figures_statement(*, off: bool, enrolled_by: bool) -> Select[Any]:
    """`tree_figures`' statement: each member's status once, counted per unit the members are
    in (one GROUP BY over the members), then those counts summed up the closure table onto
    each of those units' ancestors (one GROUP BY over the closure). Joining every member with
    each of its ancestors instead, as `unit_figures` does for a few units, judged each member
    once per level: twice the time for an organisation's two levels. The ancestors are not
    limited to the subtrees (`ancestor_id IN` them made SQLite probe the closure for every
    pair of units, 1.5 s for 2,000 units): the partial sums of units above the tops are
    simply not read."""
    subtrees = select(col(UnitLink.descendant_id)).where(
        col(UnitLink.ancestor_id).in_(bindparam("tops", expanding=True))
    )
    day = bindparam("day", type_=Date())
    per_member = (
        select(
            col(Member.unit_id).label("unit_id"),
            _per_member_status(day, off, enrolled_by),
            col(CheckIn.abnormal).label("abnormal"),
            col(Member.unreachable_since).label("unreachable_since"),
        )
        .select_from(Member)
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(Member.active), col(Member.unit_id).in_(subtrees))
        .subquery()
    )
    counts = _counts(per_member, off=off)
    per_unit = (
        select(
            per_member.c.unit_id,
            func.count().label("c0"),
            *(c.label(f"c{i}") for i, c in enumerate(counts, start=1)),
        )
        .group_by(per_member.c.unit_id)
        .subquery()
    )
    sums: list[Any] = [func.sum(per_unit.c[f"c{i}"]) for i in range(len(counts) + 1)]
    rolled: Select[Any] = select(col(UnitLink.ancestor_id), *sums)
    return (
        rolled.select_from(UnitLink)
        .join(per_unit, per_unit.c.unit_id == col(UnitLink.descendant_id))
        .group_by(col(UnitLink.ancestor_id))
    )


def _params(
    day: date, off_units: Collection[int], enrolled_by: datetime | None, **ids: list[int]
) -> dict[str, Any]:
    params: dict[str, Any] = {"day": day, **ids}
    if off_units:
        params["off"] = list(off_units)
    if enrolled_by is not None:
        params["enrolled_by"] = enrolled_by
    return params


def _figures_from(unit: Unit, values: Sequence[Any] | None) -> Figures:
    """A unit's figures from its counts (roster first, then `_counts`' order); zeros without."""
    if values is None:
        return Figures(unit_id=unit.id, name=unit.name)
    (
        roster,
        not_enrolled,
        excused,
        off,
        reported,
        missing,
        unreachable,
        abnormal,
        voluntary,
        withdrawn,
    ) = (int(v or 0) for v in values)
    return Figures(
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
        voluntary=voluntary,
        withdrawn=withdrawn,
    )


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
    stmt = _figures_statement(off=bool(off_units), enrolled_by=enrolled_by is not None)
    params = _params(day, off_units, enrolled_by, ids=ids)
    rows = {row[0]: row[1:] for row in await core_rows(session, stmt, params)}
    return [_figures_from(unit, rows.get(unit.id)) for unit in units]


async def tree_figures(
    session: AsyncSession,
    *,
    tops: Sequence[Unit],
    units: Sequence[Unit],
    day: date,
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
) -> list[Figures]:
    """`unit_figures` of `units`, all of them in the subtrees of `tops` (the rows of a summary
    of every level), in one statement whatever their number, bound to the few `tops`."""
    ids = [u.id for u in tops if u.id is not None]
    if not ids or not units:
        return []
    stmt = _tree_figures_statement(off=bool(off_units), enrolled_by=enrolled_by is not None)
    params = _params(day, off_units, enrolled_by, tops=ids)
    rows = {row[0]: row[1:] for row in await core_rows(session, stmt, params)}
    return [_figures_from(unit, rows.get(unit.id)) for unit in units]


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
        voluntary=sum(f.voluntary for f in parts),
        withdrawn=sum(f.withdrawn for f in parts),
    )


_STATUS_OF = {s.value: s for s in DayStatus}  # a dict lookup: DayStatus(value) costs 3 µs


@dataclass(slots=True)
class MemberDay:
    """One roster entry on one day, as lists and exports show it. Not frozen: a frozen
    dataclass sets each field through `object.__setattr__`, which for 100,000 rows of an
    export cost a third of their construction."""

    member_id: int
    external_id: str
    name: str
    unit_id: int
    unit_path: str
    account_id: int | None
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
    channel: str | None = None  # where the check-in was submitted from (None: unknown)


async def member_days(
    session: AsyncSession,
    *,
    org_id: int,
    day: date,
    under: Sequence[int] | None,
    unit_ids: Collection[int] | None = None,
    statuses: Collection[DayStatus] | None = None,
    abnormal_only: bool = False,
    reachable_only: bool = False,
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MemberDay]:
    """Members of `org_id` on `day`: under the given units' subtrees (`under`; None, said
    explicitly, for the whole organisation), or in exactly `unit_ids`, filtered by status;
    ordered by unit path and member id."""
    status = _status(day, _off(off_units), enrolled_by).label("status")
    stmt = (
        select(
            col(Member.id),
            col(Member.external_id),
            col(Member.name),
            col(Member.unit_id),
            col(Unit.name_path),
            col(Member.account_id),
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
            col(CheckIn.channel),
        )
        .select_from(Member)
        .join(Unit, col(Unit.id) == col(Member.unit_id))
        # The check-in first: a status filter then drops members before their account is read.
        .outerjoin(CheckIn, _checkin_join(day))
        .outerjoin(Account, col(Account.id) == col(Member.account_id))
        .where(col(Member.org_id) == org_id, col(Member.active))
    )
    if under is not None:
        stmt = stmt.where(_under(under))
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
    connection = await session.connection()
    result = cast(Iterable[Sequence[Any]], await connection.execute(stmt))  # fetched: see below
    with collector_paused():
        return [
            MemberDay(
                member_id=row[0],
                external_id=row[1],
                name=row[2],
                unit_id=row[3],
                unit_path=row[4],
                account_id=row[5],
                language=row[6],
                status=_STATUS_OF[row[7]],
                unreachable=row[8] is not None,
                abnormal=bool(row[9]),
                reasons=list(row[10] or []),
                submitted_at=_aware(row[11]),
                latitude=row[12],
                longitude=row[13],
                province=row[14],
                city=row[15],
                answers=dict(row[16]) if row[16] is not None else None,
                channel=row[17],
            )
            for row in result
        ]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a large result becomes objects. All of them
    are kept (they are the result), yet their allocation keeps triggering collections that walk
    them again and again: 1.7 s of the 3.1 s that member_days took for 100,000 members with
    their answers. For synchronous code only, so that nothing else runs meanwhile."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


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
    under: Sequence[int] | None,
    statuses: Collection[DayStatus],
    off_units: Collection[int] = (),
    enrolled_by: datetime | None = None,
) -> int:
    """How many rows `member_days` would list (for paging)."""
    status = _status(day, _off(off_units), enrolled_by)
    stmt = (
        select(func.count())
        .select_from(Member)
        .outerjoin(CheckIn, _checkin_join(day))
        .where(col(Member.org_id) == org_id, col(Member.active))
        .where(or_(*[status == s.value for s in statuses]))
    )
    if under is not None:
        stmt = stmt.where(_under(under))
    return int((await core_rows(session, stmt))[0][0])


async def channel_counts(
    session: AsyncSession, *, org_id: int, day: date, under: Sequence[int] | None
) -> dict[str | None, int]:
    """How many of the scope's check-ins on `day` came from each channel (None: unknown)."""
    stmt = (
        select(col(CheckIn.channel), func.count())
        .select_from(CheckIn)
        .where(col(CheckIn.org_id) == org_id, col(CheckIn.local_day) == day)
        .group_by(col(CheckIn.channel))
    )
    if under is not None:
        stmt = stmt.where(
            col(CheckIn.unit_id).in_(
                select(col(UnitLink.descendant_id)).where(
                    col(UnitLink.ancestor_id).in_(list(under))
                )
            )
        )
    return {channel: int(n) for channel, n in await core_rows(session, stmt)}


async def place_counts(
    session: AsyncSession, *, org_id: int, day: date, under: Sequence[int] | None
) -> list[tuple[str, str, int, int]]:
    """Where the scope checked in from on `day` (`under` as for `member_days`): (province,
    city, check-ins, outside geofence), most first."""
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
        .group_by(province, city)
        .order_by(func.count().desc(), province, city)
    )
    if under is not None:
        stmt = stmt.where(
            col(CheckIn.unit_id).in_(
                select(col(UnitLink.descendant_id)).where(
                    col(UnitLink.ancestor_id).in_(list(under))
                )
            )
        )
    return [(str(p), str(c), int(n), int(o)) for p, c, n, o in await core_rows(session, stmt)]
