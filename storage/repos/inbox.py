"""The journal of events named by text (`InboundEvent`): written before the channel is told an
event arrived, so that an acknowledged event is never lost; marked handled in the transaction
of everything handling it did; its replies kept until sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, bindparam, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboundEvent
from storage.repos.common import dialect_insert, insert_of
from storage.types import UTCDateTime


@dataclass(frozen=True, slots=True)
class Pending:
    """A journaled event: its row, who sent it, and the event (unhandled) or its replies."""

    id: int
    sender: str
    body: str


class InboxRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def journal(
        self, *, channel: str, key: str, sender: str, payload: str, now: datetime
    ) -> int | None:
        """Keep an event; its row id, or None when an event of that key was kept before (the
        channel delivered it again)."""
        insert = dialect_insert(self.session)
        stmt = (
            insert(InboundEvent)
            .values(channel=channel, key=key, sender=sender, payload=payload, received_at=now)
            .on_conflict_do_nothing(index_elements=["channel", "key"])
            .returning(col(InboundEvent.id))
        )
        row = (await self.session.exec(stmt)).first()
        return None if row is None else int(row[0])

    async def journal_many(
        self, *, channel: str, events: Sequence[tuple[str, str, str]], now: datetime
    ) -> dict[str, int]:
        """Keep several events (key, sender, payload) in one statement: the row id of each
        key kept now; a key kept before (or twice among `events`) is left out."""
        if not events:
            return {}
        stmt = _journal_statement(self.session.get_bind().dialect.name)
        rows = [
            {
                "channel": channel,
                "key": key,
                "sender": sender,
                "payload": payload,
                "received_at": now,
            }
            for key, sender, payload in events
        ]
        connection = await self.session.connection()
        kept = (await connection.execute(stmt, rows)).all()
        return {str(key): int(row_id) for row_id, key in kept}

    async def claim(self, *, event_ids: Sequence[int], now: datetime) -> int:
        """Mark events handled, with no replies yet (`keep_replies` adds them in the same
        transaction); how many were not handled before: fewer than asked means another
        worker took some, and the caller rolls back."""
        if not event_ids:
            return 0
        connection = await self.session.connection()  # Core: no journal row is an object
        result = await connection.execute(_CLAIM, {"ids": list(event_ids), "now": now})
        return int(result.rowcount or 0)

    async def keep_replies(self, *, replies: Mapping[int, str]) -> None:
        """The replies of events claimed in this transaction, to send after the commit."""
        if not replies:
            return
        connection = await self.session.connection()
        await connection.execute(
            _KEEP_REPLIES, [{"row": i, "body": b} for i, b in replies.items()]
        )

    async def unhandled(self, *, channel: str) -> list[Pending]:
        """Events kept and not handled (a crash came between), oldest first."""
        stmt = (
            select(InboundEvent.id, InboundEvent.sender, InboundEvent.payload)
            .where(InboundEvent.channel == channel, col(InboundEvent.handled_at).is_(None))
            .order_by(col(InboundEvent.id))
        )
        rows = (await self.session.exec(stmt)).all()
        return [Pending(int(i or 0), sender, payload or "") for i, sender, payload in rows]

    async def mark_handled(self, *, event_id: int, replies: str | None, now: datetime) -> bool:
        """The event is handled, with the replies it produced (None: none); its payload goes.
        False when it was handled already (by another worker): then roll back."""
        stmt = (
            update(InboundEvent)
            .where(col(InboundEvent.id) == event_id, col(InboundEvent.handled_at).is_(None))
            .values(
                handled_at=now,
                payload=None,
                replies=replies,
                replied_at=None if replies else now,
            )
        )
        result = await self.session.exec(stmt)
        return bool(result.rowcount)

    async def mark_replied(self, *, event_ids: Sequence[int], now: datetime) -> None:
        """Their replies went out: forget them (they hold people's answers)."""
        if not event_ids:
            return
        connection = await self.session.connection()  # Core, as `claim`
        await connection.execute(_MARK_REPLIED, {"ids": list(event_ids), "now": now})

    async def unreplied(self, *, channel: str) -> list[Pending]:
        """Handled events whose replies a crash kept from being sent, oldest first."""
        stmt = (
            select(InboundEvent.id, InboundEvent.sender, InboundEvent.replies)
            .where(
                InboundEvent.channel == channel,
                col(InboundEvent.replied_at).is_(None),
                col(InboundEvent.replies).is_not(None),
            )
            .order_by(col(InboundEvent.id))
        )
        rows = (await self.session.exec(stmt)).all()
        return [Pending(int(i or 0), sender, replies or "") for i, sender, replies in rows]

    async def prune(self, *, channel: str, before: datetime) -> int:
        """Forget events handled and replied before `before` (the journal is a crash buffer;
        a channel's retries come within minutes)."""
        stmt = delete(InboundEvent).where(
            col(InboundEvent.channel) == channel, col(InboundEvent.replied_at) < before
        )
        result = await self.session.exec(stmt)
        return int(result.rowcount or 0)


# The statements of every batch, built once (as storage.repos.checkins' are).
_IDS = col(InboundEvent.id).in_(bindparam("ids", expanding=True))
_NOW = bindparam("now", type_=UTCDateTime())
_CLAIM: Any = (
    update(InboundEvent)
    .where(_IDS, col(InboundEvent.handled_at).is_(None))
    .values(handled_at=_NOW, payload=None, replies=None, replied_at=_NOW)
)
_MARK_REPLIED: Any = update(InboundEvent).where(_IDS).values(replied_at=_NOW, replies=None)
_JOURNALS: dict[str, Executable] = {}


def _journal_statement(dialect: str) -> Executable:
    """`journal_many`'s INSERT of the dialect, built once."""
    stmt = _JOURNALS.get(dialect)
    if stmt is None:
        stmt = _JOURNALS[dialect] = (
            insert_of(dialect)(InboundEvent)
            .on_conflict_do_nothing(index_elements=["channel", "key"])
            .returning(col(InboundEvent.id), col(InboundEvent.key))
        )
    return stmt


_KEEP_REPLIES: Any = (
    update(InboundEvent)
    .where(col(InboundEvent.id) == bindparam("row"))
    .values(replies=bindparam("body"), replied_at=None)
)
