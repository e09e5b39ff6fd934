"""The audit trail: who read or changed what."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import AuditEntry


class AuditRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def log(
        self,
        *,
        org_id: int | None,
        actor: str,
        action: str,
        now: datetime,
        subject: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.session.add(
            AuditEntry(
                org_id=org_id, actor=actor, action=action, subject=subject, detail=detail, at=now
            )
        )
        await self.session.flush()

    async def since(self, *, org_id: int, since: datetime) -> Sequence[AuditEntry]:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.org_id == org_id, AuditEntry.at >= since)
            .order_by(col(AuditEntry.id))
        )
        return (await self.session.exec(stmt)).all()
