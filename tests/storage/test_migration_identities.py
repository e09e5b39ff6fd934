"""Migration 0009 (identities) on a populated database, both ways: every account, roster entry,
consent, role grant and enrolment attempt of the Telegram-keyed schema is still there, joined to
the same person, after the upgrade and again after the downgrade."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import func, select

from domain.delivery import TELEGRAM
from storage.db import create_engine, create_session_factory
from storage.migrate import downgrade, upgrade
from storage.models import Identity
from storage.repo import Repo
from storage.types import UTCDateTime

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
BIG = 7_000_000_001  # Telegram ids pass 2**32
NO_ACCOUNT = {BIG, 8888, 9999, 4444}  # referred to, but never given an account row


def _table(name: str, row: dict[str, Any]) -> sa.TableClause:
    def kind(value: Any) -> sa.types.TypeEngine[Any]:
        if isinstance(value, datetime):
            return UTCDateTime()
        if isinstance(value, dict | list):
            return sa.JSON()
        return sa.types.NullType()

    return sa.table(name, *(sa.column(key, kind(value)) for key, value in row.items()))


async def _insert(conn: AsyncConnection, name: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        await conn.execute(sa.insert(_table(name, row)).values(row))


async def _populate_0008(conn: AsyncConnection) -> None:
    at = [T0 + timedelta(hours=h) for h in range(10)]
    await _insert(
        conn,
        "organisation",
        [
            {
                "id": i,
                "slug": slug,
                "name": slug.upper(),
                "timezone": "Asia/Shanghai",
                "language": "zh",
                "form": "health",
                "retain_days": 30,
                "created_at": T0,
            }
            for i, slug in ((1, "school"), (2, "town"))
        ],
    )
    await _insert(
        conn,
        "unit",
        [
            {"id": 1, "org_id": 1, "name": "A", "name_path": "A", "path": "/1/", "depth": 0},
            {"id": 2, "org_id": 1, "name": "B", "name_path": "A/B", "path": "/1/2/", "depth": 1},
            {"id": 3, "org_id": 2, "name": "X", "name_path": "X", "path": "/3/", "depth": 0},
        ],
    )
    await _insert(
        conn,
        "unitlink",
        [
            {"ancestor_id": a, "descendant_id": d, "depth": depth}
            for a, d, depth in ((1, 1, 0), (2, 2, 0), (1, 2, 1), (3, 3, 0))
        ],
    )
    await _insert(
        conn,
        "account",
        [
            {
                "telegram_id": 1001,
                "language": "en",
                "failed_attempts": 0,
                "first_seen": at[1],
                "menu": "manager:en",
                "org_id": 1,
            },
            {
                "telegram_id": 1002,
                "failed_attempts": 2,
                "first_seen": at[0],
                "locked_until": at[9],
            },
            {"telegram_id": 1003, "language": "zh", "failed_attempts": 0, "first_seen": at[2]},
            {"telegram_id": 1004, "failed_attempts": 0, "first_seen": at[3]},  # refers to nothing
        ],
    )
    members = [
        (1, 1, 2, "S1", 1001, at[2], True),
        (2, 1, 2, "S2", 1002, at[3], True),
        (3, 1, 1, "S3", None, None, True),  # not enrolled
        (4, 2, 3, "T1", 1001, at[4], True),  # the same person in a second organisation
        (5, 1, 1, "S5", BIG, at[5], True),  # enrolled, no account row
        (6, 1, 1, "S6", 1003, at[6], False),  # left the roster
    ]
    await _insert(
        conn,
        "member",
        [
            {
                "id": mid,
                "org_id": org,
                "unit_id": unit,
                "external_id": ext,
                "name": f"Name {ext}",
                "telegram_id": tid,
                "enrolled_at": when,
                "active": active,
                "unreachable_since": at[7] if mid == 2 else None,
            }
            for mid, org, unit, ext, tid, when, active in members
        ],
    )
    await _insert(
        conn,
        "consent",
        [
            {"id": i, "telegram_id": tid, "org_id": org, "version": 1, "accepted": yes, "at": w}
            for i, tid, org, yes, w in (
                (1, 1001, 1, True, at[1]),
                (2, 1001, 2, True, at[3]),
                (3, 1002, 1, True, at[2]),
                (4, 9999, 1, False, at[4]),  # declined, so never enrolled
                (5, BIG, 1, True, at[4]),
            )
        ],
    )
    await _insert(
        conn,
        "rolegrant",
        [
            {"id": 1, "org_id": 1, "telegram_id": 1001, "role": "admin", "granted_at": at[1]},
            {
                "id": 2,
                "org_id": 1,
                "telegram_id": 1003,
                "unit_id": 2,
                "role": "manager",
                "granted_at": at[2],
            },
            {  # granted from the command line to someone who never wrote
                "id": 3,
                "org_id": 1,
                "telegram_id": 8888,
                "unit_id": 1,
                "role": "manager",
                "granted_at": at[0],
            },
            {
                "id": 4,
                "org_id": 2,
                "telegram_id": 1003,
                "role": "admin",
                "granted_at": at[3],
                "revoked_at": at[5],
            },
        ],
    )
    await _insert(
        conn,
        "enrolattempt",
        [
            {"id": i, "telegram_id": tid, "org_id": 1, "external_id": ext, "outcome": o, "at": w}
            for i, tid, ext, o, w in (
                (1, 1002, "S9", "mismatch", at[2]),
                (2, 1002, "S2", "enrolled", at[3]),
                (3, 4444, "S1", "taken", at[4]),
                (4, BIG, "S5", "enrolled", at[5]),
            )
        ],
    )
    day = date(2026, 11, 21)
    await _insert(
        conn,
        "checkin",
        [
            {
                "id": mid,
                "org_id": org,
                "unit_id": unit,
                "member_id": mid,
                "local_day": day,
                "version": 1,
                "submitted_at": at[8],
                "live": False,
                "outside_geofence": False,
                "abnormal": mid == 2,
                "reasons": ["fever"] if mid == 2 else [],
                "answers": {"temperature": 36.6},
                "form": "health",
                "form_version": 1,
            }
            for mid, org, unit in ((1, 1, 2), (2, 1, 2), (4, 2, 3), (5, 1, 1))
        ],
    )
    await _insert(
        conn,
        "checkinrevision",
        [
            {
                "id": mid,
                "member_id": mid,
                "local_day": day,
                "version": 1,
                "submitted_at": at[8],
                "update_id": 500 + mid,
                "abnormal": False,
                "answers": {"temperature": 36.6},
            }
            for mid in (1, 2, 4, 5)
        ],
    )
    await _insert(
        conn,
        "excuse",
        [
            {
                "id": 1,
                "org_id": 1,
                "member_id": 3,
                "first_day": day,
                "last_day": day,
                "reason": "sick",
                "created_by": "1001",
                "created_at": at[1],
            }
        ],
    )
    await _insert(
        conn,
        "outbox",
        [
            {
                "id": i,
                "org_id": 1,
                "chat_id": chat,
                "member_id": member,
                "kind": kind,
                "day": day,
                "slot": slot,
                "text": "hello",
                "status": status,
                "attempts": 0,
                "not_before": at[8],
                "created_at": at[8],
            }
            for i, chat, member, kind, slot, status in (
                (1, 1002, 2, "remind", "10:00", "sent"),
                (2, BIG, 5, "remind", "10:00", "pending"),
                (3, 1001, None, "report", "org#1", "pending"),
            )
        ],
    )


# The old shape's rows, read from either shape: the Telegram id through the identity after 0009.
OLD = {
    "account": "SELECT telegram_id, language, failed_attempts, locked_until, first_seen, menu, "
    "org_id FROM account ORDER BY telegram_id",
    "member": "SELECT id, org_id, unit_id, external_id, name, telegram_id, enrolled_at, active, "
    "unreachable_since FROM member ORDER BY id",
    "consent": "SELECT id, telegram_id, org_id, version, accepted, at FROM consent ORDER BY id",
    "rolegrant": "SELECT id, org_id, telegram_id, unit_id, role, granted_at, revoked_at "
    "FROM rolegrant ORDER BY id",
    "enrolattempt": "SELECT id, telegram_id, org_id, external_id, outcome, at "
    "FROM enrolattempt ORDER BY id",
}
TG = "(SELECT CAST(i.external_id AS BIGINT) FROM identity i WHERE i.channel = 'telegram' AND "
NEW = {
    "account": f"SELECT {TG}i.account_id = a.id) AS t, a.language, a.failed_attempts, "
    "a.locked_until, a.first_seen, a.menu, a.org_id FROM account a ORDER BY t",
    "member": f"SELECT m.id, m.org_id, m.unit_id, m.external_id, m.name, {TG}"
    "i.account_id = m.account_id), m.enrolled_at, m.active, m.unreachable_since "
    "FROM member m ORDER BY m.id",
    "consent": f"SELECT c.id, {TG}i.account_id = c.account_id), c.org_id, c.version, "
    "c.accepted, c.at FROM consent c ORDER BY c.id",
    "rolegrant": f"SELECT g.id, g.org_id, {TG}i.account_id = g.account_id), g.unit_id, g.role, "
    "g.granted_at, g.revoked_at FROM rolegrant g ORDER BY g.id",
    "enrolattempt": f"SELECT e.id, {TG}i.account_id = e.account_id), e.org_id, e.external_id, "
    "e.outcome, e.at FROM enrolattempt e ORDER BY e.id",
}
OTHERS = ("organisation", "unit", "unitlink", "checkin", "checkinrevision", "excuse", "outbox")


async def _snapshot(engine: AsyncEngine, queries: dict[str, str]) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows: dict[str, Any] = {
            table: [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]
            for table, sql in queries.items()
        }
        for table in OTHERS:
            count = (await conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()
            rows[f"{table} rows"] = count
        outbox = await conn.execute(sa.text("SELECT id, chat_id, member_id FROM outbox"))
        rows["outbox"] = sorted(tuple(r) for r in outbox.all())
    return rows


def _shape(connection: Connection) -> dict[str, Any]:
    """Tables, columns, keys and indexes, as reflection sees them."""
    inspector = sa.inspect(connection)
    shape: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        shape[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
            ),
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
        }
    return shape


async def _shape_of(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(_shape)


async def test_identities_carry_every_row_over_and_back(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await upgrade(engine, "0008")
        shape_0008 = await _shape_of(engine)
        async with engine.begin() as conn:
            await _populate_0008(conn)
        before = await _snapshot(engine, OLD)

        await upgrade(engine, "0009")  # this test's migration (0010 reshapes the outbox after it)
        after = await _snapshot(engine, NEW)
        # Those referred to without an account got one, first seen when first referred to.
        created = [row for row in after["account"] if row[0] in NO_ACCOUNT]
        assert sorted(row[0] for row in created) == sorted(NO_ACCOUNT)
        assert all(row[1:4] == (None, 0, None) and row[5:] == (None, None) for row in created)
        expected = dict(before, account=sorted(before["account"] + created, key=lambda r: r[0]))
        assert after == expected

        # The repositories read the models' tables, which are the head's: go on to it (0011
        # adds columns to member), and come back down through every later revision.
        await upgrade(engine)
        sessions = create_session_factory(engine)
        async with sessions() as session:
            repo = Repo(session)
            identities = (await session.exec(select(func.count()).select_from(Identity))).one()
            assert identities == len(after["account"])
            for mid, _org, _unit, _ext, _name, tid, _when, active, _away in before["member"]:
                if tid is None:
                    continue
                account = await repo.accounts.by_identity(channel=TELEGRAM, external_id=str(tid))
                assert account is not None and account.id is not None
                enrolled = await repo.members.enrolments(account_ids=[account.id])
                assert (mid in [m.id for m, _org in enrolled]) == bool(active)
            for cid, tid, org_id, *_rest in before["consent"]:
                account = await repo.accounts.by_identity(channel=TELEGRAM, external_id=str(tid))
                assert account is not None and account.id is not None
                consent = await repo.accounts.consent(account_id=account.id, org_id=org_id)
                assert consent is not None and consent.id == cid
            manager = await repo.accounts.by_identity(channel=TELEGRAM, external_id="8888")
            assert manager is not None and manager.id is not None
            [grant] = await repo.roles.active(account_id=manager.id)
            assert (grant.id, grant.unit_id, grant.role) == (3, 1, "manager")
            # New accounts take ids after the carried-over ones (PostgreSQL's sequence too).
            fresh = await repo.accounts.ensure(channel=TELEGRAM, external_id="1", now=T0)
            assert fresh.id == len(after["account"]) + 1
            await session.rollback()

        await downgrade(engine, "0008")
        assert await _shape_of(engine) == shape_0008
        back = await _snapshot(engine, OLD)
        assert back == expected

        await upgrade(engine, "0009")  # and up again, from what the downgrade left
        assert await _snapshot(engine, NEW) == expected
        await upgrade(engine)  # and on to the head, from the carried-over rows
    finally:
        await engine.dispose()
