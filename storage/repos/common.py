"""What every repository shares: the errors they raise and the dialect's upsert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Executable, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


class NotFound(LookupError):
    """A named thing (organisation, unit, member, invite) does not exist."""


class Conflict(ValueError):
    """The write would break a uniqueness rule (a slug, an id bound to another account)."""


def dialect_insert(session: AsyncSession) -> Any:
    return insert_of(session.get_bind().dialect.name)


def insert_of(dialect: str) -> Any:
    """The INSERT construct with the dialect's ON CONFLICT clauses."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


_UPSERTS: dict[tuple[str, str, str, tuple[str, ...]], Executable] = {}


async def upsert_many(
    session: AsyncSession,
    model: type[SQLModel],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
    update_columns: Sequence[str],
) -> None:
    """INSERT, or on a conflict of `key` UPDATE the `update_columns`, for each of `rows`: one
    single-row statement (built and compiled once per process) executed for all rows at once
    (executemany). A VALUES list of the rows instead compiles anew for every row count —
    hundreds of bind parameters each time — and an ORM-enabled insert handles each row through
    the ORM: for the journal and conversation steps of each batch of updates, that was a large
    part of the bot's time per update."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    cache_key = (dialect, model.__name__, key, tuple(update_columns))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        table = cast(Table, cast(Any, model).__table__)
        insert = insert_of(dialect)(table)
        stmt = _UPSERTS[cache_key] = insert.on_conflict_do_update(
            index_elements=[key], set_={name: insert.excluded[name] for name in update_columns}
        )
    connection = await session.connection()
    await connection.execute(stmt, list(rows))
