"""The update journal: which updates were handled, and their replies until sent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import InboundUpdate
from storage.repos.common import upsert_many


class JournalRepo:
    """The durable record of handled updates: which were handled (so a re-delivered update is
    skipped), and the replies each produced until they have been sent."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def handled_among(self, *, update_ids: Sequence[int]) -> set[int]:
        if not update_ids:
            return set()
        stmt = select(InboundUpdate.update_id).where(
            col(InboundUpdate.update_id).in_(list(update_ids)),
            col(InboundUpdate.handled_at).is_not(None),
        )
        return set((await self.session.exec(stmt)).all())

    async def is_handled(self, *, update_id: int) -> bool:
        return bool(await self.handled_among(update_ids=[update_id]))

    async def record_handled(
        self, *, rows: Sequence[tuple[int, str | None]], now: datetime
    ) -> None:
        """Mark updates handled, keeping each one's recorded replies (None: it had none)."""
        if not rows:
            return
        values = [
            {
                "update_id": update_id,
                "payload": "",
                "received_at": now,
                "handled_at": now,
                "attempts": 1,
                "replies": replies,
                "replied_at": None if replies else now,
            }
            for update_id, replies in rows
        ]
        await upsert_many(
            self.session,
            InboundUpdate,
            values,
            key="update_id",
            update_columns=("handled_at", "replies", "replied_at"),
        )

    async def mark_replied(self, *, update_ids: Sequence[int], now: datetime) -> None:
        """The replies went out: forget them (they hold people's answers)."""
        if not update_ids:
            return
        stmt = (
            update(InboundUpdate)
            .where(col(InboundUpdate.update_id).in_(list(update_ids)))
            .values(replied_at=now, replies=None)
        )
        await self.session.exec(stmt)

    async def unreplied(
        self, *, handled_before: datetime | None = None
    ) -> Sequence[tuple[int, str]]:
        """Handled updates whose replies a crash kept from being sent (handled before
        `handled_before`, when other processes may still be sending their newer ones)."""
        stmt = (
            select(InboundUpdate.update_id, InboundUpdate.replies)
            .where(
                col(InboundUpdate.replied_at).is_(None), col(InboundUpdate.replies).is_not(None)
            )
            .order_by(col(InboundUpdate.update_id))
        )
        if handled_before is not None:
            stmt = stmt.where(col(InboundUpdate.handled_at) < handled_before)
        return [(uid, replies or "") for uid, replies in (await self.session.exec(stmt)).all()]

    async def next_offset(self) -> int | None:
        """One past the newest handled update: where polling resumes."""
        newest = (await self.session.exec(select(func.max(InboundUpdate.update_id)))).one()
        return None if newest is None else int(newest) + 1

    async def prune(self, *, before: datetime) -> int:
        """Forget updates handled and replied before `before`, keeping the newest (the offset)."""
        newest = (await self.session.exec(select(func.max(InboundUpdate.update_id)))).one()
        if newest is None:
            return 0
        stmt = (
            delete(InboundUpdate)
            .where(col(InboundUpdate.replied_at) < before)
            .where(col(InboundUpdate.update_id) < newest)
        )
        result = await self.session.exec(stmt)
        return int(result.rowcount or 0)
