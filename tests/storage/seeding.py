"""Organisations the tests and benchmarks seed, made in one place so a seed says only who is in
them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.delivery import TELEGRAM
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import Account, Identity, Member, Organisation
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


async def telegram_account(repo: Repo, telegram_id: int, *, now: datetime) -> int:
    """The account id of a Telegram user, made as the bot makes it on their first word."""
    account = await repo.accounts.ensure(channel=TELEGRAM, external_id=str(telegram_id), now=now)
    assert account.id is not None
    return account.id


async def telegram_id_of(session: AsyncSession, account_id: int | None) -> int | None:
    """The Telegram user id an account is known by (None: no account, or none on Telegram)."""
    stmt = select(Identity.external_id).where(
        Identity.account_id == account_id, Identity.channel == TELEGRAM
    )
    external_id = (await session.exec(stmt)).first()
    return None if external_id is None else int(external_id)


async def telegram_accounts_in_bulk(
    session: AsyncSession, telegram_ids: Sequence[int], *, now: datetime
) -> dict[int, int]:
    """Accounts of many Telegram users, each with its identity, in two INSERTs; their ids by
    Telegram id."""
    if not telegram_ids:
        return {}
    connection = await session.connection()
    made = await connection.execute(
        insert(Account).returning(col(Account.id), sort_by_parameter_order=True),
        [
            {
                "language": None,
                "failed_attempts": 0,
                "locked_until": None,
                "first_seen": now,
                "menu": None,
                "org_id": None,
            }
            for _ in telegram_ids
        ],
    )
    made_ids = [a for a in made.scalars().all() if a is not None]
    ids = dict(zip(telegram_ids, made_ids, strict=True))
    await connection.execute(
        insert(Identity),
        [
            {"channel": TELEGRAM, "external_id": str(t), "account_id": a, "created_at": now}
            for t, a in ids.items()
        ],
    )
    return ids


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
            when = enrolled[external_id]
            account_id = await telegram_account(repo, 100 + int(external_id), now=when)
            await repo.members.bind(member=member, account_id=account_id, now=when)
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
    accounts = await telegram_accounts_in_bulk(session, [t for _, t in members], now=now)
    rows = [
        {
            "org_id": org.id,
            "unit_id": units[path],
            "external_id": str(telegram_id),
            "name": f"学生{i}",
            "account_id": accounts[telegram_id],
            "enrolled_at": now,
            "active": True,
        }
        for i, (path, telegram_id) in enumerate(members)
    ]
    connection = await session.connection()
    await connection.execute(insert(Member), rows)
    return org.id
