"""Organisations the tests and benchmarks seed, made in one place so a seed says only who is in
them: one function per thing seeded (an organisation with its roster, an invite, a role, an
enrolment, a check-in), each in the caller's session, which commits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import Clock
from domain.delivery import TELEGRAM
from storage.db import SessionFactory, create_engine, create_session_factory
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

# The school of the conversation stories (tests/handlers, the managers' core tests): two classes
# of a college and one of the arts; Alice never enrols.
STORIES: tuple[RosterLine, ...] = (
    ("工程学院/一班", "2024001", "张三"),
    ("工程学院/一班", "2024002", "李四"),
    ("工程学院/二班", "2024003", "王五"),
    ("Arts/Class A", "A100", "Alice Smith"),
)


async def telegram_account(repo: Repo, telegram_id: int, now: datetime) -> int:
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


async def create_org(
    repo: Repo,
    *,
    slug: str,
    name: str,
    now: datetime,
    language: str = "zh",
    form: str = "health",
    roster: Sequence[RosterLine] = (),
) -> Organisation:
    """An organisation in Shanghai (Chinese-speaking and asking the health form unless told),
    with `roster` imported as the lines of a roster file under its header."""
    org = await repo.orgs.create(
        slug=slug, name=name, timezone="Asia/Shanghai", language=language, form=form, now=now
    )
    assert org.id is not None
    if roster:
        rows = [
            RosterRow(line=i, unit=u, member_id=m, name=n)
            for i, (u, m, n) in enumerate(roster, start=2)
        ]
        await repo.members.import_roster(org_id=org.id, rows=rows)
    return org


async def create_invite(
    repo: Repo,
    *,
    org_id: int,
    now: datetime,
    role: str = "member",
    unit: str | None = None,
    days: int = 7,
    uses: int | None = None,
) -> str:
    """The code of an invite for `role` to the unit at path `unit` (None: the whole
    organisation), valid `days` days and `uses` times (None: any)."""
    unit_id = (await repo.units.require(org_id=org_id, name_path=unit)).id if unit else None
    invite = await repo.invites.create(
        org_id=org_id,
        unit_id=unit_id,
        role=role,
        expires_at=now + timedelta(days=days),
        max_uses=uses,
        now=now,
    )
    return invite.code


async def grant_role(
    repo: Repo,
    *,
    org_id: int,
    telegram_id: int,
    unit: str | None,
    now: datetime,
    role: str = "manager",
) -> None:
    """Telegram user `telegram_id` made `role` of the unit at path `unit`, or of the whole
    organisation without one."""
    unit_id = (await repo.units.require(org_id=org_id, name_path=unit)).id if unit else None
    await repo.roles.grant(
        org_id=org_id,
        account_id=await telegram_account(repo, telegram_id, now=now),
        unit_id=unit_id,
        role=role,
        now=now,
    )


async def roster_member(repo: Repo, *, org_id: int, member_id: str) -> Member:
    """The roster entry `member_id` of the organisation, which must be there."""
    member = await repo.members.by_external(org_id=org_id, external_id=member_id)
    assert member is not None and member.id is not None, f"no member {member_id}"
    return member


async def enrol(
    repo: Repo, *, org_id: int, telegram_id: int, member_id: str, now: datetime
) -> Member:
    """Roster entry `member_id` bound to Telegram user `telegram_id`, as enrolment binds it."""
    member = await roster_member(repo, org_id=org_id, member_id=member_id)
    account_id = await telegram_account(repo, telegram_id, now=now)
    await repo.members.bind(member=member, account_id=account_id, now=now)
    return member


class Seeding:
    """What a test world (with `sessions`, a `clock` and the `org_ids` it made by slug) seeds,
    each call through the functions above in a transaction of its own. A world sets the name,
    language and roster of its default organisation."""

    sessions: SessionFactory
    clock: Clock
    org_ids: dict[str, int]
    ORG_NAME: ClassVar[str] = "第一中学"
    ORG_LANGUAGE: ClassVar[str] = "zh"
    ROSTER: ClassVar[Sequence[RosterLine]] = STORIES

    @contextlib.asynccontextmanager
    async def seeding(self) -> AsyncIterator[Repo]:
        """A repository to seed with, committed afterwards."""
        async with self.sessions() as session:
            yield Repo(session)
            await session.commit()

    async def org(
        self,
        slug: str = "school",
        name: str | None = None,
        roster: Sequence[RosterLine] | None = None,
        *,
        language: str | None = None,
        form: str = "health",
    ) -> Organisation:
        async with self.seeding() as repo:
            org = await create_org(
                repo,
                slug=slug,
                name=name or self.ORG_NAME,
                now=self.clock.now(),
                language=language or self.ORG_LANGUAGE,
                form=form,
                roster=roster or self.ROSTER,
            )
        assert org.id is not None
        self.org_ids[slug] = org.id
        return org

    async def invite(
        self,
        slug: str = "school",
        *,
        role: str = "member",
        unit: str | None = None,
        days: int = 7,
        uses: int | None = None,
    ) -> str:
        async with self.seeding() as repo:
            return await create_invite(
                repo,
                org_id=self.org_ids[slug],
                now=self.clock.now(),
                role=role,
                unit=unit,
                days=days,
                uses=uses,
            )

    async def grant(
        self, telegram_id: int, unit: str | None, *, role: str = "manager", slug: str = "school"
    ) -> None:
        async with self.seeding() as repo:
            await grant_role(
                repo,
                org_id=self.org_ids[slug],
                telegram_id=telegram_id,
                unit=unit,
                now=self.clock.now(),
                role=role,
            )

    async def bind(self, *people: tuple[int, str], slug: str = "school") -> None:
        """Each (Telegram id, member id) bound as the enrolment conversation binds them."""
        async with self.seeding() as repo:
            for telegram_id, member_id in people:
                await enrol(
                    repo,
                    org_id=self.org_ids[slug],
                    telegram_id=telegram_id,
                    member_id=member_id,
                    now=self.clock.now(),
                )

    async def member(self, external_id: str, slug: str = "school") -> Member:
        async with self.sessions() as session:
            return await roster_member(
                Repo(session), org_id=self.org_ids[slug], member_id=external_id
            )

    async def unit_id(self, path: str, slug: str = "school") -> int:
        async with self.sessions() as session:
            unit = await Repo(session).units.require(org_id=self.org_ids[slug], name_path=path)
            assert unit.id is not None
            return unit.id


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
    org = await create_org(repo, slug="s", name=name, now=now, roster=roster)
    assert org.id is not None
    members = {}
    for _, external_id, _ in roster:
        if external_id in enrolled:
            telegram_id, when = 100 + int(external_id), enrolled[external_id]
            member = await enrol(
                repo, org_id=org.id, telegram_id=telegram_id, member_id=external_id, now=when
            )
        else:
            member = await roster_member(repo, org_id=org.id, member_id=external_id)
        members[external_id] = member
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
    repo: Repo,
    *,
    member: Member,
    day: date,
    abnormal: bool,
    now: datetime,
    answers: Mapping[str, Any] | None = None,
    city: tuple[str, str] | None = None,
) -> None:
    """A health check-in with `answers` (none unless told); an abnormal one for its
    temperature; from `city` (province, city) when told."""
    province, city_name = city or (None, None)
    await repo.checkins.submit(
        member=member,
        local_day=day,
        form="health",
        form_version=1,
        submission=Submission(
            answers=dict(answers or {}),
            abnormal=abnormal,
            reasons=["temperature"] if abnormal else [],
            province=province,
            city=city_name,
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
