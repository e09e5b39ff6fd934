"""Withdrawal and erasure on both databases: a member who withdrew is out of the denominators
from that day on (figures, lists, exports), the day before is unchanged, the erasure comes after
the organisation's grace period unless a legal hold stops it, and the totals of a past day are
the same before and after it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlmodel import select

from domain.clock import FixedClock
from domain.status import DayStatus
from scheduler.jobs import erase_withdrawn_now
from storage.aggregates import member_days, place_counts, tree_figures, unit_figures
from storage.db import SessionFactory
from storage.export import export_rows, export_summary
from storage.models import (
    AuditEntry,
    CheckIn,
    CheckInRevision,
    Consent,
    Excuse,
    FsmRecord,
    Member,
    Outbox,
)
from storage.repo import Repo, Submission
from storage.repos.privacy import Held
from storage.slots import alert_slot
from tests.storage.seeding import seed_school

TODAY = date(2026, 11, 28)
YESTERDAY = TODAY - timedelta(days=1)
ANSWERS: dict[str, Any] = {
    "location": {"lat": 39.9, "lon": 116.4, "accuracy": 10.0, "live": False},
    "temperature": 37.9,
    "symptoms": ["fever"],
    "exposure": {"yes": False, "detail": None},
    "photo": None,
}


async def seed(sessions: SessionFactory, clock: FixedClock) -> int:
    """The school of the aggregation tests; member 1 checked in yesterday (abnormal, in
    Beijing, amended once) and was excused for the day before; member 2 checked in yesterday."""
    async with sessions() as session:
        repo = Repo(session)
        org, members = await seed_school(repo, now=clock.now() - timedelta(days=10))
        assert org.id is not None
        for external_id, abnormal in (("1", True), ("1", True), ("2", False)):
            await repo.checkins.submit(
                member=members[external_id],
                local_day=YESTERDAY,
                form="health",
                form_version=1,
                submission=Submission(
                    answers=dict(ANSWERS),
                    abnormal=abnormal,
                    reasons=["temperature"] if abnormal else [],
                    latitude=39.9,
                    longitude=116.4,
                    province="北京市",
                    city="北京市",
                ),
                update_id=None,
                now=clock.now(),
            )
        for external_id in ("1", "2"):  # an alert about each abnormal check-in, to a manager
            session.add(
                Outbox(
                    org_id=org.id,
                    channel="telegram",
                    address="900",
                    kind="alert",
                    day=YESTERDAY,
                    slot=alert_slot(members[external_id].id or 0, 2),
                    text=f"{external_id}: 体温 37.9 °C",
                    not_before=clock.now(),
                    created_at=clock.now(),
                )
            )
        for external_id in ("101", "102"):  # a draft under way on Telegram, each
            session.add(
                FsmRecord(
                    key=f"fsm:{external_id}:{external_id}:default",
                    state="CheckInForm:answering",
                    data={"draft": {"temperature": 37.9}},
                )
            )
        session.add(
            Excuse(
                org_id=org.id,
                member_id=members["1"].id or 0,
                first_day=TODAY - timedelta(days=2),
                last_day=TODAY - timedelta(days=2),
                reason="病假：发烧",
                created_by="cli",
                created_at=clock.now(),
            )
        )
        await session.commit()
        return org.id


async def withdraw(sessions: SessionFactory, clock: FixedClock, org_id: int) -> None:
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.get(org_id=org_id)
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None
        await repo.privacy.withdraw(member=member, org=org, actor="101", now=clock.now())
        await session.commit()


async def every_total(sessions: SessionFactory, org_id: int, day: date) -> list[object]:
    """Everything that counts a day: unit figures, the tree, places, the export's summary."""
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.get(org_id=org_id)
        roots = list(await repo.units.roots(org_id=org_id))
        units = list(await repo.units.all(org_id=org_id))
        return [
            await unit_figures(session, units=roots, day=day),
            await tree_figures(session, tops=roots, units=units, day=day),
            await place_counts(session, org_id=org_id, day=day, under=None),
            await export_summary(session, org=org, first=day, last=day, under=None),
        ]


async def test_a_member_who_withdrew_is_out_of_the_denominators_from_that_day(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    yesterday = await every_total(sessions, org_id, YESTERDAY)
    await withdraw(sessions, clock, org_id)
    assert await every_total(sessions, org_id, YESTERDAY) == yesterday

    async with sessions() as session:
        repo = Repo(session)
        engineering = await repo.units.require(org_id=org_id, name_path="工程学院")
        [today] = await unit_figures(session, units=[engineering], day=TODAY)
        [tomorrow] = await unit_figures(session, units=[engineering], day=TODAY + timedelta(1))
        missing = await member_days(
            session, org_id=org_id, day=TODAY, under=None, statuses={DayStatus.MISSING}
        )
        listed = await member_days(session, org_id=org_id, day=TODAY, under=None)
        org = await repo.orgs.get(org_id=org_id)
        _header, rows = await export_rows(
            session, org=org, first=YESTERDAY, last=TODAY, under=None
        )
        summary = await export_summary(session, org=org, first=TODAY, last=TODAY, under=None)
    # 工程学院: 1 withdrew, 2, 3 and 4 missing, 5 never enrolled.
    assert (today.roster, today.withdrawn, today.missing, today.expected) == (5, 1, 3, 3)
    assert (today.not_enrolled, today.reported) == (1, 0)
    assert tomorrow.withdrawn == 1 and tomorrow.expected == 3
    assert "1" not in {m.external_id for m in missing}  # not reminded, not chased
    assert {m.external_id: m.status for m in listed}["1"] is DayStatus.WITHDRAWN
    status = {(r[0], r[2]): r[4] for r in rows}
    assert status[(str(YESTERDAY), "1")] == "reported"  # the day before stays as it was
    assert status[(str(TODAY), "1")] == "withdrawn"
    total = summary[-1]
    assert total[1] == "total" and total[-1] == 1  # the summary's `withdrawn` column
    assert total[2] == 4  # expected: 2, 3, 4 and 6


async def test_a_check_in_on_the_day_of_the_withdrawal_still_counts(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(org_id=org_id, external_id="2")
        assert member is not None
        await repo.checkins.submit(
            member=member,
            local_day=TODAY,
            form="health",
            form_version=1,
            submission=Submission(answers={}, abnormal=False, reasons=[]),
            update_id=None,
            now=clock.now(),
        )
        await repo.privacy.withdraw(
            member=member, org=await repo.orgs.get(org_id=org_id), actor="x", now=clock.now()
        )
        await session.commit()
        listed = await member_days(session, org_id=org_id, day=TODAY, under=None)
    assert {m.external_id: m.status for m in listed}["2"] is DayStatus.REPORTED


async def test_erasure_waits_for_the_grace_period_and_keeps_past_totals(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    await withdraw(sessions, clock, org_id)
    before = await every_total(sessions, org_id, YESTERDAY)
    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert await erase_withdrawn_now(sessions, clock) == []
    clock.advance(timedelta(seconds=1))
    assert await erase_withdrawn_now(sessions, clock) == [("s", "1")]
    assert await erase_withdrawn_now(sessions, clock) == []  # once

    assert await every_total(sessions, org_id, YESTERDAY) == before
    async with sessions() as session:
        checkins = (await session.exec(select(CheckIn))).all()
        revisions = (await session.exec(select(CheckInRevision))).all()
        excuse = (await session.exec(select(Excuse))).one()
        member = (await session.exec(select(Member).where(Member.external_id == "1"))).one()
        audit = (await session.exec(select(AuditEntry))).all()
        consents = (await session.exec(select(Consent))).all()
    erased = next(c for c in checkins if c.member_id == member.id)
    kept = next(c for c in checkins if c.member_id != member.id)
    assert erased.answers == {} and erased.reasons == [] and erased.latitude is None
    assert erased.abnormal and erased.province == "北京市" and erased.version == 2
    assert kept.answers == ANSWERS and kept.latitude == 39.9  # nobody else's
    assert [r.answers for r in revisions if r.member_id == member.id] == [{}, {}]
    assert excuse.reason == "" and excuse.first_day == TODAY - timedelta(days=2)
    assert member.erased_at == clock.now() and member.name == "甲"
    assert [(a.actor, a.action, a.subject) for a in audit] == [
        ("101", "consent.withdraw", "1"),
        ("withdrawal", "member.erase", "1"),
    ]
    assert audit[1].detail == (
        "grace period over: check-ins 1, revisions 2, excuses 1, letters 1, conversations 1, "
        "photos 0"
    )
    async with sessions() as session:
        alerts = (await session.exec(select(Outbox))).all()
        drafts = (await session.exec(select(FsmRecord))).all()
    assert [a.text for a in alerts] == ["2: 体温 37.9 °C"]  # the alert about them is gone
    assert [d.key for d in drafts] == ["fsm:102:102:default"]  # their draft too
    assert [(c.accepted, c.version) for c in consents] == [(False, 2)]


async def test_a_legal_hold_stops_the_erasure_until_it_is_cleared(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    await withdraw(sessions, clock, org_id)
    async with sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None
        await repo.privacy.hold(member=member, reason="公安调取", actor="cli", now=clock.now())
        await session.commit()
    clock.advance(timedelta(days=30))
    assert await erase_withdrawn_now(sessions, clock) == []
    async with sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None
        try:
            await repo.privacy.erase(member=member, actor="cli", why="on request", now=clock.now())
        except Held as held:
            assert str(held) == "公安调取"
        else:
            raise AssertionError("erased under a hold")
        await repo.privacy.release(member=member, reason="已结案", actor="cli", now=clock.now())
        await session.commit()
    assert await erase_withdrawn_now(sessions, clock) == [("s", "1")]
    async with sessions() as session:
        actions = [a.action for a in (await session.exec(select(AuditEntry))).all()]
    assert actions == ["consent.withdraw", "hold.set", "hold.clear", "member.erase"]


async def test_an_organisation_without_grace_erases_at_the_next_run(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await seed(sessions, clock)
    async with sessions() as session:
        org = await Repo(session).orgs.get(org_id=org_id)
        org.withdrawal_grace_days = 0
        await session.commit()
    await withdraw(sessions, clock, org_id)
    assert await erase_withdrawn_now(sessions, clock) == [("s", "1")]
