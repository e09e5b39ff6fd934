"""Migrations on both databases: a schema built step by step matches the models, and data that
existed before a migration is carried over."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables the migrations must produce)
from domain.keys import CHECKIN_NOW
from storage import migrate
from storage.db import create_engine, create_session_factory
from storage.migrate import pending, upgrade
from storage.schedules import Letter, OutboxRepo
from storage.types import UTCDateTime


async def test_units_created_before_the_closure_table_get_their_links(
    empty_database_url: str,
) -> None:
    engine: AsyncEngine = create_engine(empty_database_url)
    try:
        await upgrade(engine, "0001")
        now = datetime.now(UTC).replace(tzinfo=None)
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organisation (id, slug, name, timezone, language, form, "
                    "retain_days, created_at) VALUES (1, 'o', 'O', 'Asia/Shanghai', 'zh', "
                    "'health', 30, :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO unit (id, org_id, parent_id, name, name_path, path, depth) "
                    "VALUES (1, 1, NULL, 'A', 'A', '/1/', 0), (2, 1, 1, 'B', 'A/B', '/1/2/', 1)"
                )
            )
        assert await pending(engine) != []
        await upgrade(engine)
        assert await pending(engine) == []
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT ancestor_id, descendant_id, depth FROM unitlink ORDER BY 2, 3")
                )
            ).all()
        assert [tuple(r) for r in rows] == [(1, 1, 0), (2, 2, 0), (1, 2, 1)]
    finally:
        await engine.dispose()


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_migrated_schema_matches_the_models(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            differences = await conn.run_sync(_diff)
        assert differences == []
    finally:
        await engine.dispose()


OLD_OUTBOX = sa.table(
    "outbox",
    sa.column("id", sa.Integer()),
    sa.column("org_id", sa.Integer()),
    sa.column("chat_id", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("day", sa.Date()),
    sa.column("slot", sa.String()),
    sa.column("text", sa.String()),
    sa.column("markup", sa.JSON(none_as_null=True)),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("not_before", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
)
CHECK_IN_NOW = {"inline_keyboard": [[{"text": "✅ 立即打卡", "callback_data": "go"}]]}
TWO_ROWS = {
    "inline_keyboard": [
        [{"text": "Help", "url": "https://example.org/help"}],
        [{"text": "A", "callback_data": "a"}, {"text": "B", "callback_data": "b"}],
    ]
}


async def test_letters_waiting_in_the_outbox_become_neutral_and_back(
    empty_database_url: str,
) -> None:
    """Letters queued before the outbox was neutral (Telegram chat ids, inline keyboards) go
    out after the upgrade with the same buttons; the downgrade gives them back as they were."""
    engine: AsyncEngine = create_engine(empty_database_url)
    day = date(2026, 11, 30)
    now = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    old: list[dict[str, Any]] = [
        {"chat_id": 12, "kind": "remind", "markup": CHECK_IN_NOW},
        {"chat_id": 7_000_000_001_234, "kind": "alert", "markup": None},
        {"chat_id": 13, "kind": "remind", "markup": TWO_ROWS},
    ]
    try:
        await upgrade(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organisation (id, slug, name, timezone, language, form, "
                    "retain_days, created_at) VALUES (1, 'o', 'O', 'Asia/Shanghai', 'zh', "
                    "'health', 30, :now)"
                ),
                {"now": now.replace(tzinfo=None)},
            )
            await conn.execute(
                OLD_OUTBOX.insert(),
                [
                    {
                        **row,
                        "org_id": 1,
                        "day": day,
                        "slot": "remind@08:00",
                        "text": f"<b>letter to {row['chat_id']}</b>",
                        "status": "pending",
                        "attempts": 0,
                        "not_before": now,
                        "created_at": now,
                    }
                    for row in old
                ],
            )
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT channel, address, options, text FROM outbox ORDER BY id")
                )
            ).all()
        assert [(r[0], r[1], r[3]) for r in rows] == [
            ("telegram", "12", "<b>letter to 12</b>"),
            ("telegram", "7000000001234", "<b>letter to 7000000001234</b>"),
            ("telegram", "13", "<b>letter to 13</b>"),
        ]
        options = [_json(r[2]) for r in rows]
        assert options == [
            [[{"label": "✅ 立即打卡", "key": CHECKIN_NOW}]],
            None,
            [
                [{"label": "Help", "url": "https://example.org/help"}],
                [{"label": "A", "key": "a"}, {"label": "B", "key": "b"}],
            ],
        ]
        # One letter per (channel, address, day, kind, slot) still: the round that runs again
        # adds nothing; the same slot on another channel is another letter.
        async with create_session_factory(engine)() as session:
            outbox = OutboxRepo(session)
            again = Letter(
                org_id=1,
                channel="telegram",
                address="12",
                kind="remind",
                day=day,
                slot="remind@08:00",
                text="again",
            )
            assert await outbox.enqueue([again], now=now) == 0
            elsewhere = Letter(
                org_id=1,
                channel="wecom",
                address="12",
                kind="remind",
                day=day,
                slot="remind@08:00",
                text="elsewhere",
            )
            assert await outbox.enqueue([elsewhere], now=now) == 1
            await session.commit()

        # To 0009, this test's revision's parent (0011 came after it), with SQLite's foreign
        # keys off while tables are rebuilt, as `daka` migrates.
        await migrate.downgrade(engine, "0009")
        async with engine.connect() as conn:
            back = (
                await conn.execute(text("SELECT chat_id, markup FROM outbox ORDER BY id"))
            ).all()
        assert [(r[0], _json(r[1])) for r in back] == [
            (row["chat_id"], row["markup"]) for row in old
        ]  # the letter to another channel is gone: the old outbox cannot address it
    finally:
        await engine.dispose()


def _json(value: Any) -> Any:
    """A JSON column read with plain SQL: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


async def test_audit_actors_from_before_channels_become_telegram_ones_and_back(
    empty_database_url: str,
) -> None:
    """An actor written as a bare Telegram id reads "telegram:<id>" after 0012; "cli" and
    actors that already name their channel stay; the downgrade gives the bare ids back."""
    engine: AsyncEngine = create_engine(empty_database_url)
    now = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    actors = ["730", "cli", "wecom:zhangsan", "7000000001234", "12a"]
    try:
        await upgrade(engine, "0011")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO organisation (id, slug, name, timezone, language, form, "
                    "retain_days, created_at) VALUES (1, 'o', 'O', 'Asia/Shanghai', 'zh', "
                    "'health', 30, :now)"
                ),
                {"now": now.replace(tzinfo=None)},
            )
            for actor in actors:
                await conn.execute(
                    text(
                        "INSERT INTO auditentry (org_id, actor, action, at) "
                        "VALUES (1, :actor, 'export', :now)"
                    ),
                    {"actor": actor, "now": now.replace(tzinfo=None)},
                )
        await upgrade(engine, "0012")
        async with engine.connect() as conn:
            after = (await conn.execute(text("SELECT actor FROM auditentry ORDER BY id"))).all()
        assert [r[0] for r in after] == [
            "telegram:730",
            "cli",
            "wecom:zhangsan",
            "telegram:7000000001234",
            "12a",
        ]
        await migrate.downgrade(engine, "0011")
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT actor FROM auditentry ORDER BY id"))).all()
        assert [r[0] for r in back] == actors
    finally:
        await engine.dispose()


async def test_checkins_keep_their_rows_across_0014_and_learn_their_channel_after(
    empty_database_url: str,
) -> None:
    """0014 adds the channel a check-in came from: rows from before read "unknown" (NULL),
    new ones name it; the downgrade drops the column and keeps the check-ins."""
    from storage.repo import Repo
    from storage.repos.checkins import Submission
    from tests.storage.seeding import seed_school

    engine: AsyncEngine = create_engine(empty_database_url)
    now = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            _, members = await seed_school(repo, now=now)
            for external_id, channel in (("1", "wecom"), ("2", "telegram")):
                await repo.checkins.submit(
                    member=members[external_id],
                    local_day=date(2026, 12, 8),
                    form="health",
                    form_version=1,
                    submission=Submission(answers={}, abnormal=False, reasons=[]),
                    update_id=None,
                    now=now,
                    channel=channel,
                )
            await session.commit()
        select_channels = text("SELECT channel FROM checkin ORDER BY id")
        async with engine.connect() as conn:
            assert [r[0] for r in (await conn.execute(select_channels)).all()] == [
                "wecom",
                "telegram",
            ]
        await migrate.downgrade(engine, "0013")
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT count(*) FROM checkin"))).scalar_one()
            revisions = (
                await conn.execute(text("SELECT count(*) FROM checkinrevision"))
            ).scalar_one()
        assert (kept, revisions) == (2, 2)
        await upgrade(engine, "0014")
        async with engine.connect() as conn:
            assert [r[0] for r in (await conn.execute(select_channels)).all()] == [None, None]
            rows = await conn.execute(text("SELECT channel FROM checkinrevision"))
            assert [r[0] for r in rows.all()] == [None, None]
    finally:
        await engine.dispose()


async def test_accounts_keep_their_rows_across_0016_and_count_erasures_after(
    empty_database_url: str,
) -> None:
    """0016 adds how many times an account's data was erased: accounts from before start at
    0; the downgrade drops the column and keeps the accounts."""
    engine: AsyncEngine = create_engine(empty_database_url)
    now = datetime(2026, 12, 8, 1, 0, tzinfo=UTC).replace(tzinfo=None)
    try:
        await upgrade(engine, "0015")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO account (id, failed_attempts, first_seen) VALUES (1, 0, :now)"),
                {"now": now},
            )
        await upgrade(engine, "0016")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO account (id, failed_attempts, first_seen) VALUES (2, 0, :now)"),
                {"now": now},
            )
            await conn.execute(text("UPDATE account SET erasures = erasures + 1 WHERE id = 2"))
        select_erasures = text("SELECT id, erasures FROM account ORDER BY id")
        async with engine.connect() as conn:
            rows = (await conn.execute(select_erasures)).all()
        assert [tuple(r) for r in rows] == [(1, 0), (2, 1)]
        await migrate.downgrade(engine, "0015")
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT count(*) FROM account"))).scalar_one()
        assert kept == 2
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (await conn.execute(select_erasures)).all()
        assert [tuple(r) for r in rows] == [(1, 0), (2, 0)]
    finally:
        await engine.dispose()
