"""Retention on both databases: past `retain_days`, coordinates and photos go, figures stay."""

from __future__ import annotations

from datetime import date, timedelta

from domain.clock import FixedClock
from scheduler.jobs import apply_retention_now
from storage.db import SessionFactory
from storage.models import CheckIn, CheckInRevision
from storage.repo import Repo, RosterRow, Submission

ANSWERS = {
    "location": {"lat": 39.9, "lon": 116.4, "accuracy": 10.0, "live": False},
    "temperature": 37.6,
    "symptoms": ["fever"],
    "exposure": {"yes": False, "detail": None},
    "photo": "AgACAgQ-file-id",
}


async def test_old_check_ins_lose_coordinates_and_photos_but_keep_the_rest(
    sessions: SessionFactory, clock: FixedClock
) -> None:
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
        org.retain_days = 14
        await repo.members.import_roster(
            org_id=org.id or 0, rows=[RosterRow(line=2, unit="一班", member_id="1", name="甲")]
        )
        member = await repo.members.by_external(org_id=org.id or 0, external_id="1")
        assert member is not None
        for days_ago in (20, 3):
            await repo.checkins.submit(
                member=member,
                local_day=date(2026, 11, 28) - timedelta(days=days_ago),
                form="health",
                form_version=1,
                submission=Submission(
                    answers=dict(ANSWERS),
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
    touched = await apply_retention_now(sessions, clock)
    assert touched == {"s": 1}
    assert await apply_retention_now(sessions, clock) == {}  # nothing left to clear
    async with sessions() as session:
        from sqlmodel import col, select

        rows = (await session.exec(select(CheckIn).order_by(col(CheckIn.local_day)))).all()
        revisions = (await session.exec(select(CheckInRevision))).all()
    old, recent = rows
    assert (old.latitude, old.longitude, old.accuracy_m) == (None, None, None)
    assert old.answers["location"] is None and old.answers["photo"] is None
    assert old.answers["temperature"] == 37.6 and old.province == "北京市" and old.abnormal
    assert recent.latitude == 39.9 and recent.answers["photo"] == "AgACAgQ-file-id"
    old_revision = next(r for r in revisions if r.local_day == old.local_day)
    assert old_revision.answers["location"] is None and old_revision.answers["temperature"] == 37.6
