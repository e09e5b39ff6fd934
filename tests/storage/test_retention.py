"""Retention on both databases: each answer goes once the period its question declares is over
(the organisation's default for the rest, within the form's bound), in the check-in and in every
revision of it; the day's status and the figures stay, what was cleared is audited, and a legal
hold keeps everything."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from domain.clock import FixedClock
from domain.forms import parse_form
from domain.retention import Period, coordinate_days, periods
from scheduler.jobs import apply_retention_now
from storage import retention as retention_module
from storage.aggregates import place_counts, unit_figures
from storage.db import SessionFactory
from storage.models import AuditEntry, CheckIn, CheckInRevision, Member
from storage.repo import Repo, RosterRow, Submission
from storage.retention import apply_retention

TODAY = date(2026, 11, 28)
ANSWERS: dict[str, Any] = {
    "location": {"lat": 39.9, "lon": 116.4, "accuracy": 10.0, "live": False},
    "temperature": 37.6,
    "symptoms": ["fever"],
    "exposure": {"yes": True, "detail": "途经武汉"},
    "photo": "AgACAgQ-file-id",
}
# The health form's periods: photo 7, location 14, exposure's details 14, the rest 30 days.
AGES = (3, 8, 15, 31)


async def seed(
    sessions: SessionFactory, clock: FixedClock, *, ages: tuple[int, ...] = AGES
) -> int:
    """Member 1 checked in `ages` days ago (twice each day: two revisions), member 2 too."""
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.create(
            slug="s",
            name="S",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=clock.now(),
        )
        assert org.id is not None
        await repo.members.import_roster(
            org_id=org.id,
            rows=[
                RosterRow(line=2, unit="一班", member_id="1", name="甲"),
                RosterRow(line=3, unit="一班", member_id="2", name="乙"),
            ],
        )
        for external_id in ("1", "2"):
            member = await repo.members.by_external(org_id=org.id, external_id=external_id)
            assert member is not None
            for days_ago in ages:
                for temperature in (38.1, 37.6):
                    await repo.checkins.submit(
                        member=member,
                        local_day=TODAY - timedelta(days=days_ago),
                        form="health",
                        form_version=1,
                        submission=Submission(
                            answers={**ANSWERS, "temperature": temperature},
                            abnormal=True,
                            reasons=["temperature"],
                            latitude=39.9,
                            longitude=116.4,
                            accuracy_m=10.0,
                            province="北京市",
                            city="北京市",
                        ),
                        update_id=None,
                        now=clock.now(),
                    )
        await session.commit()
        return org.id


async def by_age(sessions: SessionFactory, external_id: str = "1") -> dict[int, CheckIn]:
    async with sessions() as session:
        stmt = (
            select(CheckIn)
            .join(Member, col(Member.id) == col(CheckIn.member_id))
            .where(Member.external_id == external_id)
        )
        return {(TODAY - c.local_day).days: c for c in (await session.exec(stmt)).all()}


def test_each_question_has_its_period_within_the_form_bound() -> None:
    form = parse_form(
        {
            "version": 1,
            "title": {"zh": "表", "en": "Form"},
            "max_retain_days": 20,
            "questions": [
                {"id": "where", "kind": "location", "text": {"zh": "位置", "en": "Where"}},
                {
                    "id": "temp",
                    "kind": "number",
                    "text": {"zh": "体温", "en": "Temperature"},
                    "retain_days": 10,
                },
                {
                    "id": "trip",
                    "kind": "yesno",
                    "text": {"zh": "行程", "en": "Trip"},
                    "follow_up": {"zh": "说明", "en": "Details"},
                    "follow_up_retain_days": 3,
                },
            ],
        },
        name="t",
    )
    # The organisation's default (30) for what names no period, cut to the form's bound (20).
    assert periods(form, 30) == (
        Period("where", 20),
        Period("temp", 10),
        Period("trip", 20),
        Period("trip", 3, "detail"),
    )
    assert periods(form, 5) == (
        Period("where", 5),
        Period("temp", 10),
        Period("trip", 5),
        Period("trip", 3, "detail"),
    )
    assert coordinate_days(form, 30) == 20


async def test_a_check_in_older_than_each_period_loses_exactly_that_answer(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    before = await figures(sessions, org_id)
    touched = await apply_retention_now(sessions, clock)
    assert touched == {"s": 6}  # ages 8, 15 and 31, of both members
    rows = await by_age(sessions)

    assert rows[3].answers == {**ANSWERS, "temperature": 37.6}  # nothing is over yet
    assert rows[3].latitude == 39.9
    assert rows[8].answers == {**ANSWERS, "temperature": 37.6, "photo": None}  # photo: 7 days
    assert rows[8].latitude == 39.9
    assert rows[15].answers == {  # location and the typed details: 14 days
        **ANSWERS,
        "temperature": 37.6,
        "photo": None,
        "location": None,
        "exposure": {"yes": True, "detail": None},
    }
    assert (rows[15].latitude, rows[15].longitude, rows[15].accuracy_m) == (None, None, None)
    assert rows[31].answers == {q: None for q in ANSWERS}  # the rest: 30 days
    for row in rows.values():  # the day's status, abnormal and place name stay
        assert row.abnormal and row.reasons == ["temperature"] and row.province == "北京市"

    async with sessions() as session:
        revisions = (await session.exec(select(CheckInRevision))).all()
        current = {
            (c.member_id, c.local_day): c.answers
            for c in (await session.exec(select(CheckIn))).all()
        }
        audit = (await session.exec(select(AuditEntry))).all()
    assert len(revisions) == 16
    for revision in revisions:  # every version lost what its check-in lost
        kept = current[(revision.member_id, revision.local_day)]
        assert {**revision.answers, "temperature": None} == {**kept, "temperature": None}
        assert revision.answers["temperature"] in (None, 38.1, 37.6)

    [entry] = audit
    assert (entry.actor, entry.action, entry.org_id) == ("retention", "retention", org_id)
    assert entry.detail == (
        "6 check-ins: coordinates 4, exposure 2, exposure.detail 2, location 4, photo 6, "
        "symptoms 2, temperature 2"
    )
    assert await figures(sessions, org_id) == before  # the figures of every day are the same
    assert await apply_retention_now(sessions, clock) == {}  # nothing left to clear
    async with sessions() as session:
        assert len((await session.exec(select(AuditEntry))).all()) == 1


async def figures(sessions: SessionFactory, org_id: int) -> list[object]:
    async with sessions() as session:
        repo = Repo(session)
        roots = await repo.units.roots(org_id=org_id)
        return [
            (
                await unit_figures(session, units=roots, day=TODAY - timedelta(days=age)),
                await place_counts(
                    session, org_id=org_id, day=TODAY - timedelta(days=age), under=None
                ),
            )
            for age in AGES
        ]


async def test_periods_are_crossed_one_run_at_a_time(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    await seed(sessions, clock, ages=(6,))
    assert await apply_retention_now(sessions, clock) == {}
    clock.advance(timedelta(days=2))  # 8 days old: the photo goes, nothing else
    assert await apply_retention_now(sessions, clock) == {"s": 2}
    [row] = (await by_age(sessions)).values()
    assert row.answers["photo"] is None and row.answers["location"] is not None
    assert row.retention_applied == 7
    clock.advance(timedelta(days=7))  # 15 days old: the location and the details
    assert await apply_retention_now(sessions, clock) == {"s": 2}
    [row] = (await by_age(sessions)).values()
    assert row.answers["location"] is None and row.answers["temperature"] == 37.6
    assert row.latitude is None and row.retention_applied == 14


async def test_the_organisation_default_applies_where_a_question_names_no_period(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock, ages=(12,))
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.get(org_id=org_id)
        org.form, org.retain_days = "location", 10  # a form whose question names none
        checkins = (await session.exec(select(CheckIn))).all()
        for checkin in checkins:
            checkin.form = "location"
            checkin.answers = {"location": ANSWERS["location"]}
        await session.commit()
    assert await apply_retention_now(sessions, clock) == {"s": 2}
    rows = await by_age(sessions)
    assert rows[12].answers == {"location": None} and rows[12].latitude is None


async def test_a_dry_run_counts_and_changes_nothing(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    await seed(sessions, clock)
    async with sessions() as session:
        assert await apply_retention(session, now=clock.now(), dry_run=True) == {"s": 6}
        await session.commit()
        assert (await session.exec(select(AuditEntry))).all() == []
    rows = await by_age(sessions)
    assert rows[31].answers["temperature"] == 37.6 and rows[31].retention_applied == 0


async def test_a_legal_hold_keeps_everything_until_it_is_cleared(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        held = await repo.members.by_external(org_id=org_id, external_id="1")
        assert held is not None
        await repo.privacy.hold(member=held, reason="诉讼保全", actor="cli", now=clock.now())
        await session.commit()
    assert await apply_retention_now(sessions, clock) == {"s": 3}  # member 2's only
    assert (await by_age(sessions, "1"))[31].answers == {**ANSWERS, "temperature": 37.6}
    assert (await by_age(sessions, "2"))[31].answers["temperature"] is None
    async with sessions() as session:
        repo = Repo(session)
        held = await repo.members.by_external(org_id=org_id, external_id="1")
        assert held is not None
        await repo.privacy.release(member=held, reason="结案", actor="cli", now=clock.now())
        await session.commit()
    assert await apply_retention_now(sessions, clock) == {"s": 3}
    assert (await by_age(sessions, "1"))[31].answers["temperature"] is None


async def test_many_check_ins_are_cleared_a_batch_at_a_time(
    sessions: SessionFactory, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_module, "BATCH", 2)
    await seed(sessions, clock)
    async with sessions() as session:
        assert await apply_retention(session, now=clock.now(), dry_run=True) == {"s": 6}
    assert await apply_retention_now(sessions, clock) == {"s": 6}
    assert all(
        r.answers["photo"] is None for age, r in (await by_age(sessions, "2")).items() if age > 7
    )
