"""A scope's figures day by day, for the managers' trend chart (`domain.present.charts` draws
it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import day_end
from domain.status import Figures
from storage.aggregates import total, unit_figures
from storage.models import Organisation, Unit
from storage.repos.units import UnitRepo
from storage.schedules import plan

MAX_DAYS = 90


async def trend_series(
    session: AsyncSession,
    *,
    org: Organisation,
    under: Sequence[int] | None,
    last: date,
    days: int,
) -> list[tuple[date, Figures]]:
    """The figures of the given units' subtrees together (disjoint units; None: the whole
    organisation) for each of the `days` days up to and including `last`, oldest first. Days
    off and enrolment are judged per day, as /summary does."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    assert org.id is not None
    if under is None:
        scope = list(await UnitRepo(session).roots(org_id=org.id))
    else:
        stmt = select(Unit).where(col(Unit.id).in_(list(under)), col(Unit.org_id) == org.id)
        scope = list((await session.exec(stmt)).all())
        if len(scope) != len(set(under)):
            raise ValueError(f"not units of organisation #{org.id}: {sorted(under)}")
    org_plan = await plan(session, org)
    series = []
    for back in range(days - 1, -1, -1):
        day = last - timedelta(days=back)
        parts = await unit_figures(
            session,
            units=scope,
            day=day,
            off_units=org_plan.off_units(day),
            enrolled_by=day_end(day, org.timezone),
        )
        one = under is not None and len(parts) == 1
        series.append((day, parts[0] if one else total(org.name, parts)))
    return series
