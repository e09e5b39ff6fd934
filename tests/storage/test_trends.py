"""The trend chart's figures: day by day, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.clock import FixedClock
from domain.status import Figures
from storage.db import SessionFactory
from storage.models import Organisation
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from storage.trends import MAX_DAYS, trend_series
from tests.storage.seeding import check_in, create_org, seed_roster

LAST = date(2026, 11, 28)
FIRST = LAST - timedelta(days=4)  # 11-24 … 11-28
HOLIDAY = date(2026, 11, 25)
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)
LATE_ENROLMENT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai on 11-26

# Who checks in on which day, and whether abnormally.
CHECKINS = {
    date(2026, 11, 24): {"1": False, "2": True},
    HOLIDAY: {"3": True},  # on the holiday, of their own accord, and abnormal
    date(2026, 11, 26): {"1": False, "2": False, "3": True, "4": True},
    date(2026, 11, 28): {"4": True},
}


async def seed(sessions: SessionFactory, clock: FixedClock) -> Organisation:
    """工程学院/一班: 1, 2; 工程学院/二班: 3 (all enrolled long ago); 文学院/甲班: 4 (enrolled on
    11-26); 11-25 is a holiday."""
    async with sessions() as session:
        repo = Repo(session)
        roster = [
            ("工程学院/一班", "1", "甲"),
            ("工程学院/一班", "2", "乙"),
            ("工程学院/二班", "3", "丙"),
            ("文学院/甲班", "4", "丁"),
        ]
        org, members = await seed_roster(
            repo,
            name="第一中学",
            roster=roster,
            enrolled={m: LATE_ENROLMENT if m == "4" else LONG_AGO for _, m, _ in roster},
            now=clock.now(),
        )
        assert org.id is not None
        for day, who in CHECKINS.items():
            for external_id, abnormal in who.items():
                await check_in(
                    repo, member=members[external_id], day=day, abnormal=abnormal, now=clock.now()
                )
        await ScheduleRepo(session).add_holidays(org_id=org.id, days=[HOLIDAY])
        await session.commit()
        return org


def rows(series: list[tuple[date, Figures]]) -> list[tuple[str, int, int, float | None, int]]:
    return [(f"{day:%m-%d}", f.expected, f.reported, f.rate, f.abnormal) for day, f in series]


async def test_the_whole_organisation_day_by_day(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org = await seed(sessions, clock)
    async with sessions() as session:
        series = await trend_series(session, org=org, under=None, last=LAST, days=5)
    assert [day for day, _ in series] == [FIRST + timedelta(days=i) for i in range(5)]
    assert rows(series) == [
        ("11-24", 3, 2, 2 / 3, 1),  # 4 had not enrolled yet
        ("11-25", 0, 0, None, 1),  # the holiday: nobody expected, no rate; 3's alert counts
        ("11-26", 4, 4, 1.0, 2),  # 4 enrolled that morning and reported
        ("11-27", 4, 0, 0.0, 0),
        ("11-28", 4, 1, 0.25, 1),
    ]
    assert {f.name for _, f in series} == {"第一中学"}
    holiday = series[1][1]
    assert (holiday.off, holiday.voluntary, holiday.not_enrolled) == (2, 1, 1)


async def test_one_unit_with_its_subtree(sessions: SessionFactory, clock: FixedClock) -> None:
    org = await seed(sessions, clock)
    assert org.id is not None
    async with sessions() as session:
        units = Repo(session).units
        college = await units.require(org_id=org.id, name_path="工程学院")
        one = await units.require(org_id=org.id, name_path="工程学院/一班")
        arts = await units.require(org_id=org.id, name_path="文学院")
        by_college = await trend_series(
            session, org=org, under=[college.id or 0], last=LAST, days=5
        )
        by_class = await trend_series(session, org=org, under=[one.id or 0], last=LAST, days=5)
        by_arts = await trend_series(session, org=org, under=[arts.id or 0], last=LAST, days=2)
        # A manager of both: the union, day by day
        both = await trend_series(
            session, org=org, under=[one.id or 0, arts.id or 0], last=LAST, days=2
        )
    assert rows(by_college) == [
        ("11-24", 3, 2, 2 / 3, 1),
        ("11-25", 0, 0, None, 1),
        ("11-26", 3, 3, 1.0, 1),
        ("11-27", 3, 0, 0.0, 0),
        ("11-28", 3, 0, 0.0, 0),
    ]
    assert [f.rate for _, f in by_class] == [1.0, None, 1.0, 0.0, 0.0]
    assert [f.abnormal for _, f in by_class] == [1, 0, 0, 0, 0]
    assert {f.name for _, f in by_class} == {"一班"}
    assert rows(by_arts) == [("11-27", 1, 0, 0.0, 0), ("11-28", 1, 1, 1.0, 1)]
    class_rows = rows(by_class)[-2:]
    assert [(d, e, r, a) for d, e, r, _, a in rows(both)] == [
        (d, e + ea, r + ra, a + aa)
        for (d, e, r, _, a), (_, ea, ra, _, aa) in zip(class_rows, rows(by_arts), strict=True)
    ]
    assert {f.name for _, f in both} == {"第一中学"}


async def test_days_and_units_are_checked(sessions: SessionFactory, clock: FixedClock) -> None:
    org = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        other = await create_org(repo, slug="other", name="第二中学", now=clock.now())
        foreign = await repo.units.ensure(org_id=other.id or 0, name_path="某班")
        for days in (0, MAX_DAYS + 1):
            with pytest.raises(ValueError):
                await trend_series(session, org=org, under=None, last=LAST, days=days)
        with pytest.raises(ValueError):
            await trend_series(session, org=org, under=[foreign.id or 0], last=LAST, days=3)
        longest = await trend_series(session, org=org, under=None, last=LAST, days=MAX_DAYS)
    assert len(longest) == MAX_DAYS and longest[-1][0] == LAST
    assert longest[0][0] == LAST - timedelta(days=MAX_DAYS - 1)
