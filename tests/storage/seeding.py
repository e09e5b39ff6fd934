"""Organisations the tests and benchmarks seed, made in one place so a seed says only who is in
them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import Member, Organisation
from storage.repo import Repo, RosterRow, Submission

# A roster line: unit path, member id, name.
RosterLine = tuple[str, str, str]

# The school of the aggregation and export tests; 5 never enrols.
SCHOOL: tuple[RosterLine, ...] = (
    ("工程学院/一班", "1", "甲"),
    ("工程学院/一班", "2", "乙"),
    ("工程学院/一班", "3", "丙"),
    ("工程学院/二班", "4", "丁"),
    ("工程学院/二班", "5", "戊"),
    ("文学院/甲班", "6", "己"),
)


async def create_org(repo: Repo, *, slug: str, name: str, now: datetime) -> Organisation:
    """A Chinese-speaking organisation in Shanghai that asks the health form."""
    return await repo.orgs.create(
        slug=slug, name=name, timezone="Asia/Shanghai", language="zh", form="health", now=now
    )


async def seed_roster(
    repo: Repo,
    *,
    name: str,
    roster: Sequence[RosterLine],
    enrolled: Mapping[str, datetime],
    now: datetime,
) -> tuple[Organisation, dict[str, Member]]:
    """Organisation "s" with `roster` imported; those in `enrolled` (member id: when) are bound to
    Telegram account 100 + their id, the others never enrol. Returns the members by id."""
    org = await create_org(repo, slug="s", name=name, now=now)
    assert org.id is not None
    await repo.members.import_roster(
        org_id=org.id,
        rows=[
            RosterRow(line=i, unit=u, member_id=m, name=n) for i, (u, m, n) in enumerate(roster)
        ],
    )
    members = {}
    for _, external_id, _ in roster:
        member = await repo.members.by_external(org_id=org.id, external_id=external_id)
        assert member is not None and member.id is not None
        members[external_id] = member
        if external_id in enrolled:
            await repo.members.bind(
                member=member, telegram_id=100 + int(external_id), now=enrolled[external_id]
            )
    return org, members


async def seed_school(
    repo: Repo, *, now: datetime, order: Sequence[str] = ("1", "2", "3", "4", "5", "6")
) -> tuple[Organisation, dict[str, Member]]:
    """Organisation "S" with `SCHOOL` imported in `order` (of member ids), all but 5 enrolled."""
    lines = {line[1]: line for line in SCHOOL}
    return await seed_roster(
        repo,
        name="S",
        roster=[lines[external_id] for external_id in order],
        enrolled={external_id: now for external_id in order if external_id != "5"},
        now=now,
    )


async def check_in(
    repo: Repo, *, member: Member, day: date, abnormal: bool, now: datetime
) -> None:
    """A health check-in with no answers; an abnormal one for its temperature."""
    await repo.checkins.submit(
        member=member,
        local_day=day,
        form="health",
        form_version=1,
        submission=Submission(
            answers={}, abnormal=abnormal, reasons=["temperature"] if abnormal else []
        ),
        update_id=None,
        now=now,
    )


@contextlib.asynccontextmanager
async def migrated_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on an upgraded database, its engine gone afterwards: seeds for child processes."""
    engine = create_engine(database_url)
    await upgrade(engine)
    try:
        async with create_session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def enrol_in_bulk(
    session: AsyncSession, *, slug: str, members: Sequence[tuple[str, int]], now: datetime
) -> int:
    """Organisation `slug` ("第一中学") of enrolled members, given as (unit path, Telegram id,
    which is their member id too), in one INSERT: thousands are too many to import and bind one
    by one. Returns the organisation's id."""
    repo = Repo(session)
    org = await create_org(repo, slug=slug, name="第一中学", now=now)
    assert org.id is not None
    units = {}
    for path, _ in members:
        if path not in units:
            units[path] = (await repo.units.ensure(org_id=org.id, name_path=path)).id
    rows = [
        {
            "org_id": org.id,
            "unit_id": units[path],
            "external_id": str(telegram_id),
            "name": f"学生{i}",
            "telegram_id": telegram_id,
            "enrolled_at": now,
            "active": True,
        }
        for i, (path, telegram_id) in enumerate(members)
    ]
    connection = await session.connection()
    await connection.execute(insert(Member), rows)
    return org.id
