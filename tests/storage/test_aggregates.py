"""Day figures and member lists over the unit tree, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from domain.clock import FixedClock
from domain.status import DayStatus
from storage.aggregates import member_days, total, tree_figures, unit_figures
from storage.db import SessionFactory
from storage.models import Excuse
from storage.repo import Repo
from tests.storage.seeding import check_in, seed_school

DAY = date(2026, 11, 28)


async def seed(sessions: SessionFactory, clock: FixedClock) -> int:
    """工程学院/一班: reported, reported abnormal, excused; 工程学院/二班: missing (unreachable),
    not enrolled; 文学院/甲班: missing."""
    async with sessions() as session:
        repo = Repo(session)
        org, members = await seed_school(repo, now=clock.now())
        assert org.id is not None
        for external_id, abnormal in (("1", False), ("2", True)):
            await check_in(
                repo, member=members[external_id], day=DAY, abnormal=abnormal, now=clock.now()
            )
        excused, unreachable = members["3"], members["4"]
        session.add(
            Excuse(
                org_id=org.id,
                member_id=excused.id or 0,
                first_day=DAY - timedelta(days=1),
                last_day=DAY,
                reason="病假",
                created_by="cli",
                created_at=clock.now(),
            )
        )
        unreachable.unreachable_since = clock.now()
        await session.commit()
        return org.id


async def test_figures_roll_up_the_tree(sessions: SessionFactory, clock: FixedClock) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        roots = await repo.units.roots(org_id=org_id)
        engineering = await repo.units.require(org_id=org_id, name_path="工程学院")
        classes = await repo.units.children(unit_id=engineering.id or 0)
        colleges = await unit_figures(session, units=roots, day=DAY)
        per_class = await unit_figures(session, units=classes, day=DAY)
        next_day = await unit_figures(session, units=roots, day=DAY + timedelta(days=2))
    by_name = {f.name: f for f in colleges}
    eng = by_name["工程学院"]
    assert (eng.roster, eng.reported, eng.abnormal, eng.excused, eng.not_enrolled) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert (eng.missing, eng.unreachable, eng.expected) == (1, 1, 3)
    assert eng.rate == 2 / 3
    arts = by_name["文学院"]
    assert (arts.roster, arts.missing, arts.reported, arts.rate) == (1, 1, 0, 0.0)
    assert [(f.name, f.reported, f.missing) for f in per_class] == [("一班", 2, 0), ("二班", 0, 1)]
    whole = total("S", colleges)
    assert (whole.roster, whole.reported, whole.missing, whole.not_enrolled) == (6, 2, 2, 1)
    assert sum(f.missing for f in next_day) == 5  # nobody reported, nobody excused any more


async def test_off_units_are_neither_expected_nor_missing(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        arts_class = await repo.units.require(org_id=org_id, name_path="文学院/甲班")
        roots = await repo.units.roots(org_id=org_id)
        figures = await unit_figures(session, units=roots, day=DAY, off_units={arts_class.id or 0})
    arts = next(f for f in figures if f.name == "文学院")
    assert (arts.off, arts.missing, arts.expected, arts.rate) == (1, 0, 0, None)


async def test_member_lists_filter_by_status_scope_and_reachability(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        engineering = await repo.units.require(org_id=org_id, name_path="工程学院")
        missing = await member_days(
            session, org_id=org_id, day=DAY, under=None, statuses={DayStatus.MISSING}
        )
        eng_all = await member_days(session, org_id=org_id, day=DAY, under=[engineering.id or 0])
        reachable_missing = await member_days(
            session,
            org_id=org_id,
            day=DAY,
            under=None,
            statuses={DayStatus.MISSING},
            reachable_only=True,
        )
        abnormal = await member_days(
            session, org_id=org_id, day=DAY, under=None, abnormal_only=True
        )
    assert {(m.external_id, m.unreachable) for m in missing} == {("6", False), ("4", True)}
    assert [(m.external_id, m.status) for m in eng_all] == [
        ("1", DayStatus.REPORTED),
        ("2", DayStatus.REPORTED),
        ("3", DayStatus.EXCUSED),
        ("4", DayStatus.MISSING),
        ("5", DayStatus.NOT_ENROLLED),
    ]
    assert [m.external_id for m in reachable_missing] == ["6"]
    assert [(m.external_id, m.reasons) for m in abnormal] == [("2", ["temperature"])]
    assert abnormal[0].submitted_at == clock.now()


async def test_a_voluntary_check_in_on_an_off_day_is_outside_expected_and_rate(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """Regression (issue 16): a member of a unit that is off who checks in anyway was counted as
    expected and reported, so an off unit read 100 % and the whole school's rate rose. They are
    not expected: their check-in is voluntary; an abnormal answer still counts as abnormal."""
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        six = await repo.members.by_external(org_id=org_id, external_id="6")
        assert six is not None
        await check_in(repo, member=six, day=DAY, abnormal=True, now=clock.now())
        await session.commit()
    async with sessions() as session:
        repo = Repo(session)
        arts_class = await repo.units.require(org_id=org_id, name_path="文学院/甲班")
        roots = await repo.units.roots(org_id=org_id)
        off = {arts_class.id or 0}
        figures = await unit_figures(session, units=roots, day=DAY, off_units=off)
        [one_class] = await unit_figures(session, units=[arts_class], day=DAY, off_units=off)
        abnormal = await member_days(
            session, org_id=org_id, day=DAY, under=None, abnormal_only=True, off_units=off
        )
    arts = next(f for f in figures if f.name == "文学院")
    assert (arts.expected, arts.reported, arts.missing, arts.rate) == (0, 0, 0, None)
    assert (arts.voluntary, arts.abnormal, arts.off, arts.roster) == (1, 1, 0, 1)
    assert one_class == replace(arts, unit_id=arts_class.id, name="甲班")
    whole = total("S", figures)
    # 工程学院 as before (2 of 3); 6 is neither in the expected nor among the reported.
    assert (whole.expected, whole.reported, whole.rate) == (3, 2, 2 / 3)
    assert (whole.voluntary, whole.abnormal) == (1, 2)
    assert not whole.all_zero
    # The alert is not lost: member lists show the check-in as it is.
    assert [(m.external_id, m.status) for m in abnormal] == [
        ("2", DayStatus.REPORTED),
        ("6", DayStatus.REPORTED),
    ]


async def test_an_excused_member_who_checks_in_is_back_and_reported(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """Unlike a day off, an excuse is one member's: checking in ends it for the day (back early
    from sick leave), so they count as expected and reported."""
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        three = await repo.members.by_external(org_id=org_id, external_id="3")  # excused
        assert three is not None
        await check_in(repo, member=three, day=DAY, abnormal=False, now=clock.now())
        await session.commit()
    async with sessions() as session:
        repo = Repo(session)
        class_one = await repo.units.require(org_id=org_id, name_path="工程学院/一班")
        [figures] = await unit_figures(session, units=[class_one], day=DAY)
        listed = await member_days(
            session, org_id=org_id, day=DAY, under=None, unit_ids=[class_one.id or 0]
        )
    assert (figures.expected, figures.reported, figures.rate) == (3, 3, 1.0)
    assert (figures.voluntary, figures.excused, figures.roster) == (0, 0, 3)
    assert [(m.external_id, m.status) for m in listed] == [
        ("1", DayStatus.REPORTED),
        ("2", DayStatus.REPORTED),
        ("3", DayStatus.REPORTED),
    ]


async def test_tree_figures_agree_with_unit_figures_for_every_unit(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """The export's summary of every level (`tree_figures`, one statement bound to the scope's
    top units) says what /summary and the reports say (`unit_figures`) of each unit: with units
    off and without, voluntary and abnormal check-ins, an enrolment deadline, a scope of one
    college."""
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        six = await repo.members.by_external(org_id=org_id, external_id="6")
        assert six is not None
        await check_in(repo, member=six, day=DAY, abnormal=True, now=clock.now())
        await session.commit()
    async with sessions() as session:
        repo = Repo(session)
        units = list(await repo.units.all(org_id=org_id))
        roots = list(await repo.units.roots(org_id=org_id))
        arts_class = await repo.units.require(org_id=org_id, name_path="文学院/甲班")
        engineering = await repo.units.require(org_id=org_id, name_path="工程学院")
        under_engineering = [u for u in units if u.name_path.startswith("工程学院")]
        for off in (set(), {arts_class.id or 0}):
            for enrolled_by in (None, clock.now() - timedelta(hours=1)):
                tree = await tree_figures(
                    session,
                    tops=roots,
                    units=units,
                    day=DAY,
                    off_units=off,
                    enrolled_by=enrolled_by,
                )
                assert tree == await unit_figures(
                    session, units=units, day=DAY, off_units=off, enrolled_by=enrolled_by
                )
                college = await tree_figures(
                    session,
                    tops=[engineering],
                    units=under_engineering,
                    day=DAY,
                    off_units=off,
                    enrolled_by=enrolled_by,
                )
                assert college == tree[: len(under_engineering)]
        assert await tree_figures(session, tops=[], units=units, day=DAY) == []
    assert [(f.name, f.roster, f.reported, f.voluntary) for f in tree] == [
        ("工程学院", 5, 2, 0),
        ("一班", 3, 2, 0),
        ("二班", 2, 0, 0),
        ("文学院", 1, 0, 1),
        ("甲班", 1, 0, 1),
    ]
