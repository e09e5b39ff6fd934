"""Photos kept by Daka, on both databases: they go with their answer when its period is over
(every version of that day's answer), the photos of drafts never submitted go the day after,
a legal hold keeps them, and erasure removes the member's, nobody else's."""

from __future__ import annotations

from datetime import date, timedelta

from sqlmodel import select

from domain.clock import FixedClock
from domain.kinds.photo import media_ref
from scheduler.jobs import apply_retention_now
from storage.db import SessionFactory
from storage.models import AuditEntry, CheckIn, Member, Photo
from storage.repo import Repo, RosterRow, Submission

TODAY = date(2026, 11, 28)
JPEG = b"\xff\xd8\xff\xe0 photo"


async def school(sessions: SessionFactory, clock: FixedClock) -> int:
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
        await session.commit()
        return org.id


async def photo_on(
    sessions: SessionFactory,
    clock: FixedClock,
    org_id: int,
    external_id: str,
    days_ago: int,
    *,
    submitted: bool = True,
) -> int:
    """A photo answered `days_ago`, and (when `submitted`) the check-in holding it."""
    day = TODAY - timedelta(days=days_ago)
    async with sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(org_id=org_id, external_id=external_id)
        assert member is not None
        photo = await repo.photos.add(
            member=member,
            local_day=day,
            question="photo",
            content=JPEG,
            content_type="image/jpeg",
            channel="wecom",
            now=clock.now(),
        )
        assert photo.id is not None
        if submitted:
            await repo.checkins.submit(
                member=member,
                local_day=day,
                form="health",
                form_version=1,
                submission=Submission(
                    answers={"temperature": 36.6, "photo": media_ref(photo.id)},
                    abnormal=False,
                    reasons=[],
                ),
                update_id=None,
                now=clock.now(),
            )
        await session.commit()
        return photo.id


async def kept(sessions: SessionFactory) -> set[int]:
    async with sessions() as session:
        return {p.id for p in (await session.exec(select(Photo))).all() if p.id is not None}


async def test_a_photo_goes_with_its_answer_and_an_unsubmitted_one_the_day_after(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await school(sessions, clock)
    fresh = await photo_on(sessions, clock, org_id, "1", 3)  # the photo's period: 7 days
    old = await photo_on(sessions, clock, org_id, "1", 8)
    replaced = await photo_on(sessions, clock, org_id, "1", 8)  # version 2 of that day
    drafted_today = await photo_on(sessions, clock, org_id, "2", 0, submitted=False)
    given_up = await photo_on(sessions, clock, org_id, "2", 2, submitted=False)
    assert await kept(sessions) == {fresh, old, replaced, drafted_today, given_up}
    assert await apply_retention_now(sessions, clock) == {"s": 1}
    assert await kept(sessions) == {fresh, drafted_today}
    async with sessions() as session:
        [entry] = (await session.exec(select(AuditEntry))).all()
        checkins = (await session.exec(select(CheckIn))).all()
    assert entry.detail == "1 check-ins: photo 1, unsubmitted photos 1"
    assert sorted(str(c.answers["photo"]) for c in checkins) == sorted([media_ref(fresh), "None"])
    clock.advance(timedelta(days=5))
    await apply_retention_now(sessions, clock)
    assert await kept(sessions) == set()


async def test_a_legal_hold_keeps_the_photos(sessions: SessionFactory, clock: FixedClock) -> None:
    org_id = await school(sessions, clock)
    old = await photo_on(sessions, clock, org_id, "1", 8)
    given_up = await photo_on(sessions, clock, org_id, "1", 2, submitted=False)
    async with sessions() as session:
        repo = Repo(session)
        held = await repo.members.by_external(org_id=org_id, external_id="1")
        assert held is not None
        await repo.privacy.hold(member=held, reason="诉讼保全", actor="cli", now=clock.now())
        await session.commit()
    await apply_retention_now(sessions, clock)
    assert await kept(sessions) == {old, given_up}


async def test_erasure_removes_the_members_photos_and_nobody_elses(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id = await school(sessions, clock)
    await photo_on(sessions, clock, org_id, "1", 1)
    await photo_on(sessions, clock, org_id, "1", 0, submitted=False)
    theirs = await photo_on(sessions, clock, org_id, "2", 1)
    async with sessions() as session:
        repo = Repo(session)
        member = (await session.exec(select(Member).where(Member.external_id == "1"))).one()
        erased = await repo.privacy.erase(member=member, actor="cli", why="asked", now=clock.now())
        await session.commit()
    assert erased.photos == 2 and erased.detail().endswith("photos 2")
    assert await kept(sessions) == {theirs}


async def photo_kept(
    sessions: SessionFactory, clock: FixedClock, org_id: int, days_ago: int, answers: list[str]
) -> int:
    """A photo of member 1 kept `days_ago`, and a check-in of that day with one version per
    item of `answers` (its "photo" answer, `{photo}` standing for the photo's reference)."""
    day = TODAY - timedelta(days=days_ago)
    async with sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(org_id=org_id, external_id="1")
        assert member is not None
        photo = await repo.photos.add(
            member=member,
            local_day=day,
            question="photo",
            content=JPEG,
            content_type="image/jpeg",
            channel="wecom",
            now=clock.now(),
        )
        assert photo.id is not None
        for answer in answers:
            await repo.checkins.submit(
                member=member,
                local_day=day,
                form="health",
                form_version=1,
                submission=Submission(
                    answers={"photo": answer.format(photo=media_ref(photo.id))},
                    abnormal=False,
                    reasons=[],
                ),
                update_id=None,
                now=clock.now(),
            )
        await session.commit()
        return photo.id


async def test_a_photo_of_a_draft_given_up_on_a_day_checked_in_goes_the_day_after(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """Regression: a day's check-in kept every photo of that day, so a photo sent while
    "answering again" and then given up stayed until retention (months). Now what no version
    of the day's answers holds goes; what the current answer or a revision holds stays."""
    org_id = await school(sessions, clock)
    current = await photo_kept(sessions, clock, org_id, 2, ["{photo}"])
    given_up = await photo_kept(sessions, clock, org_id, 2, [])  # sent again, never submitted
    earlier = await photo_kept(sessions, clock, org_id, 3, ["{photo}"])
    later = await photo_kept(sessions, clock, org_id, 3, ["{photo}"])  # version 2 of that day
    # A reference that merely begins with a photo's (media:12 against media:1) holds nothing.
    prefix = await photo_kept(sessions, clock, org_id, 4, ["{photo}0", "{photo}1"])
    today = await photo_kept(sessions, clock, org_id, 0, [])  # a draft still open
    await apply_retention_now(sessions, clock)
    assert await kept(sessions) == {current, earlier, later, today}
    assert given_up not in {current, earlier, later} and prefix not in {current, today}
    async with sessions() as session:
        [entry] = (await session.exec(select(AuditEntry))).all()
    assert entry.detail == "0 check-ins: unsubmitted photos 2"
