"""Migrations on both databases: a schema built step by step matches the models, and data that
existed before a migration is carried over."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (the tables the migrations must produce)
from storage.db import create_engine
from storage.migrate import pending, upgrade


async def test_units_created_before_the_closure_table_get_their_links(database_url: str) -> None:
    engine: AsyncEngine = create_engine(database_url)
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


async def test_the_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            differences = await conn.run_sync(_diff)
        assert differences == []
    finally:
        await engine.dispose()
