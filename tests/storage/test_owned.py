"""The one registry of what a person owns (`storage.owned.REGISTRY`): every table that holds
somebody's records is in it, so a new table cannot be left out of /mydata; and an
administrator's request sees one organisation only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (every table)
from domain.clock import FixedClock
from storage import owned
from storage.db import SessionFactory
from storage.repo import Repo
from tests.storage.seeding import seed_school

PERSON_COLUMNS = frozenset({"member_id", "account_id"})


def unregistered(metadata: sa.MetaData) -> list[str]:
    """Tables with a column naming a person (a roster entry or an account) that no kind of the
    registry reads."""
    registered = {model.__table__.name for kind in owned.REGISTRY for model in kind.tables}  # type: ignore[attr-defined]
    return [
        table.name
        for table in metadata.sorted_tables
        if PERSON_COLUMNS & set(table.columns.keys()) and table.name not in registered
    ]


def test_every_table_with_a_person_in_it_is_in_the_registry() -> None:
    assert unregistered(SQLModel.metadata) == []


def test_a_new_table_with_a_member_id_would_fail_the_check() -> None:
    metadata = sa.MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(metadata)
    sa.Table(
        "vaccination",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("member_id", sa.Integer),
    )
    sa.Table("note", metadata, sa.Column("account_id", sa.Integer))
    assert unregistered(metadata) == ["note", "vaccination"]


def test_registry_names_are_unique_and_every_kind_reads_a_table() -> None:
    names = [kind.name for kind in owned.REGISTRY]
    assert len(names) == len(set(names)) and all(kind.tables for kind in owned.REGISTRY)


async def test_an_administrators_request_sees_one_organisation(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """The same person in two organisations: `daka mydata` of one shows that one's records."""
    async with sessions() as session:
        repo = Repo(session)
        _org, members = await seed_school(repo, now=clock.now())
        other = await repo.orgs.create(
            slug="t",
            name="T",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=clock.now(),
        )
        account_id = members["1"].account_id
        assert account_id is not None and other.id is not None
        await repo.accounts.record_consent(
            account_id=account_id, org_id=other.id, version=2, accepted=True, now=clock.now()
        )
        await repo.roles.grant(
            org_id=other.id, account_id=account_id, unit_id=None, role="admin", now=clock.now()
        )
        for actor in ("telegram:101", "101"):  # as written since 0012, and an older entry
            await repo.audit.log(
                org_id=other.id, actor=actor, action="member.view", subject="x", now=clock.now()
            )
        await session.commit()
        request = await owned.personal_data(
            session, owned.owner_of_member(members["1"]), now=clock.now()
        )
        own = await owned.personal_data(
            session, await owned.owner_of_account(session, account_id), now=clock.now()
        )
    assert request["consents"] == [] and request["roles"] == [] and request["access_log"] == []
    assert [c["organisation"] for c in own["consents"]] == ["T"]
    assert [r["organisation"] for r in own["roles"]] == ["T"]
    assert [e["action"] for e in own["access_log"]] == ["member.view"] * 2  # what they did
    assert [e["member_id"] for e in request["enrolments"]] == ["1"]
    assert request["identities"] == own["identities"] != []
