"""The manager's `Scope`: resolved from grants without a query, and asked about units, members
and roster lines with one query each — never reaching into another organisation or unit."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.clock import FixedClock
from storage.db import SessionFactory
from storage.models import Organisation, RoleGrant
from storage.repo import Repo, RosterRow
from storage.scope import MAX_ROW_ID, Scope, manager_orgs, resolve_scope
from tests.storage.seeding import create_org

NOW = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def org(org_id: int, name: str = "第一中学") -> Organisation:
    return Organisation(id=org_id, slug=f"o{org_id}", name=name, created_at=NOW)


def grant(org_id: int, unit_id: int | None, role: str = "manager") -> RoleGrant:
    return RoleGrant(org_id=org_id, account_id=7, unit_id=unit_id, role=role, granted_at=NOW)


ORGS = {1: org(1), 2: org(2, "第二中学")}


def test_a_scope_is_the_union_of_the_grants_in_one_organisation() -> None:
    scope = resolve_scope([grant(1, 10), grant(1, 11), grant(1, 10)], ORGS, None)
    assert scope is not None and scope.org.id == 1 and scope.unit_ids == (10, 11)
    assert not scope.whole and scope.label == "10,11" and len(scope.orgs) == 1


def test_an_organisation_wide_grant_is_the_whole_organisation() -> None:
    scope = resolve_scope([grant(1, 10), grant(1, None, "admin")], ORGS, None)
    assert scope is not None and scope.whole and scope.label == "0"


def test_members_have_no_scope() -> None:
    assert resolve_scope([], ORGS, None) is None
    assert resolve_scope([grant(1, 10, role="member")], ORGS, None) is None


def test_grants_in_two_organisations_need_a_choice() -> None:
    grants = [grant(2, 20), grant(1, None, "admin")]
    assert [o.id for o in manager_orgs(grants, ORGS)] == [2, 1]
    assert resolve_scope(grants, ORGS, None) is None  # no choice made yet
    assert resolve_scope(grants, ORGS, 3) is None  # a choice they no longer manage
    chosen = resolve_scope(grants, ORGS, 2)
    assert chosen is not None and chosen.org.id == 2 and chosen.unit_ids == (20,)
    assert [o.id for o in chosen.orgs] == [2, 1]
    other = resolve_scope(grants, ORGS, 1)
    assert other is not None and other.whole  # the admin grant of org 1, not org 2's unit


def test_today_is_the_organisations_day() -> None:
    scope = Scope(org=org(1), unit_ids=None)
    late = FixedClock(datetime(2026, 11, 28, 17, 0, tzinfo=UTC))  # 01:00 on 11-29 in Shanghai
    assert scope.today(late).isoformat() == "2026-11-29"


ROSTER = [
    ("工程学院/一班", "1", "甲"),
    ("工程学院/一班", "2", "乙"),
    ("工程学院/二班", "3", "丙"),
    ("文学院/甲班", "4", "丁"),
]


async def two_schools(sessions: SessionFactory) -> tuple[Organisation, Organisation]:
    """Org 1 with the roster above; org 2 with a unit and a member of the same names and ids."""
    async with sessions() as session:
        repo = Repo(session)
        first = await create_org(repo, slug="one", name="第一中学", now=NOW)
        second = await create_org(repo, slug="two", name="第二中学", now=NOW)
        for target, lines in ((first, ROSTER), (second, [("工程学院/一班", "1", "外")])):
            await repo.members.import_roster(
                org_id=target.id or 0,
                rows=[
                    RosterRow(line=i, unit=u, member_id=m, name=n)
                    for i, (u, m, n) in enumerate(lines)
                ],
            )
        await session.commit()
    return first, second


async def unit_ids(sessions: SessionFactory, org_id: int, *paths: str) -> list[int]:
    async with sessions() as session:
        units = Repo(session).units
        return [(await units.require(org_id=org_id, name_path=p)).id or 0 for p in paths]


async def test_units_and_members_inside_and_outside(sessions: SessionFactory) -> None:
    first, second = await two_schools(sessions)
    college, one, two, arts = await unit_ids(
        sessions, first.id or 0, "工程学院", "工程学院/一班", "工程学院/二班", "文学院/甲班"
    )
    [foreign] = await unit_ids(sessions, second.id or 0, "工程学院/一班")
    counselor = Scope(org=first, unit_ids=(one, arts))
    admin = Scope(org=first, unit_ids=None)
    async with sessions() as session:
        assert [u.name_path for u in await counselor.tops(session)] == [
            "工程学院/一班",
            "文学院/甲班",
        ]
        assert await counselor.under(session) == [one, arts]
        assert (await counselor.unit(session, one)) is not None
        assert (await counselor.unit(session, arts)) is not None
        for outside in (college, two, foreign, 0, -1, MAX_ROW_ID, MAX_ROW_ID + 1, 2**70):
            assert await counselor.unit(session, outside) is None, outside
        # The whole organisation is still one organisation.
        assert await admin.under(session) is None  # the whole organisation, said so
        assert (await admin.unit(session, two)) is not None
        assert await admin.unit(session, foreign) is None
        assert [u.name_path for u in await admin.tops(session)] == ["工程学院", "文学院"]
        mine = await counselor.member(session, external_id="1")
        assert mine is not None and mine.name == "甲" and mine.org_id == first.id
        assert await counselor.member(session, external_id="3") is None  # class two
        assert await counselor.member(session, external_id="x" * 65) is None
        foreign_member = await Scope(org=second, unit_ids=None).member(session, external_id="1")
        assert foreign_member is not None and foreign_member.id is not None
        assert await admin.member(session, member_id=foreign_member.id) is None
        assert await admin.member(session, member_id=2**63) is None
        with pytest.raises(TypeError):
            await admin.member(session)


async def test_overlapping_grants_count_the_outer_unit_once(sessions: SessionFactory) -> None:
    first, _ = await two_schools(sessions)
    college, one = await unit_ids(sessions, first.id or 0, "工程学院", "工程学院/一班")
    scope = Scope(org=first, unit_ids=(one, college))
    async with sessions() as session:
        assert [u.name_path for u in await scope.tops(session)] == ["工程学院"]


async def test_a_roster_may_only_write_inside_the_scope(sessions: SessionFactory) -> None:
    first, _ = await two_schools(sessions)
    [one] = await unit_ids(sessions, first.id or 0, "工程学院/一班")
    counselor = Scope(org=first, unit_ids=(one,))
    rows = [
        RosterRow(line=2, unit="工程学院/一班", member_id="2", name="乙改"),  # theirs
        RosterRow(line=3, unit="工程学院/一班", member_id="9", name="新"),  # new
        RosterRow(line=4, unit="工程学院/一班/小组", member_id="10", name="新"),  # new sub-unit
        RosterRow(line=5, unit="工程学院/一班", member_id="3", name="丙"),  # class two's
        RosterRow(line=6, unit="工程学院/二班", member_id="11", name="新"),  # unit outside
        RosterRow(line=7, unit="工程学院/一班x", member_id="12", name="新"),  # a name prefix only
    ]
    async with sessions() as session:
        good, refused = await counselor.roster_rows(session, rows)
        assert [r.line for r in good] == [2, 3, 4] and refused == [5, 6, 7]
        everything, none = await Scope(org=first, unit_ids=None).roster_rows(session, rows)
        assert everything == rows and none == []


async def test_under_is_the_outermost_grants_and_none_only_for_the_whole_organisation(
    sessions: SessionFactory,
) -> None:
    first, _ = await two_schools(sessions)
    college, one, arts = await unit_ids(
        sessions, first.id or 0, "工程学院", "工程学院/一班", "文学院/甲班"
    )
    nested = Scope(org=first, unit_ids=(one, college, arts))
    async with sessions() as session:
        assert await nested.under(session) == [college, arts]  # class one is inside its college
        assert await Scope(org=first, unit_ids=(one,)).under(session) == [one]
        assert await Scope(org=first, unit_ids=None).under(session) is None


def scoped_reads() -> list[Callable[..., Any]]:
    from storage.aggregates import count_member_days, member_days, place_counts
    from storage.export import detail_chunks, export_rows, export_summary, write_export
    from storage.trends import trend_series

    return [
        member_days,
        count_member_days,
        place_counts,
        trend_series,
        export_rows,
        detail_chunks,
        export_summary,
        write_export,
    ]


@pytest.mark.parametrize("read", scoped_reads(), ids=lambda f: f.__name__)
def test_no_scoped_read_defaults_to_the_whole_organisation(read: Callable[..., Any]) -> None:
    """`under=None` is the whole organisation: a caller says so, never gets it by forgetting."""
    under = inspect.signature(read).parameters["under"]
    assert under.kind is inspect.Parameter.KEYWORD_ONLY
    assert under.default is inspect.Parameter.empty
