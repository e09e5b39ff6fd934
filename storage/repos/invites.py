"""Invite codes: made by managers, counted atomically when used."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.enrolment import new_invite_code
from storage.models import Invite
from storage.repos.common import NotFound


class InviteRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        *,
        org_id: int,
        unit_id: int | None,
        role: str,
        expires_at: datetime,
        max_uses: int | None,
        now: datetime,
    ) -> Invite:
        invite = Invite(
            code=new_invite_code(),
            org_id=org_id,
            unit_id=unit_id,
            role=role,
            expires_at=expires_at,
            max_uses=max_uses,
            created_at=now,
        )
        self.session.add(invite)
        await self.session.flush()
        return invite

    async def get(self, *, code: str) -> Invite | None:
        return await self.session.get(Invite, code)

    async def of_org(self, *, org_id: int) -> Sequence[Invite]:
        """Every invite of an organisation, revoked and expired ones too, oldest first."""
        stmt = (
            select(Invite)
            .where(Invite.org_id == org_id)
            .order_by(col(Invite.created_at), col(Invite.code))
        )
        return (await self.session.exec(stmt)).all()

    async def revoke(self, *, code: str, now: datetime) -> Invite:
        invite = await self.get(code=code)
        if invite is None:
            raise NotFound(f"no invite {code!r}")
        if invite.revoked_at is None:
            invite.revoked_at = now
            await self.session.flush()
        return invite

    async def use(self, *, code: str) -> bool:
        """Count one use, atomically refusing when the last use was already taken."""
        stmt = (
            update(Invite)
            .where(col(Invite.code) == code)
            .where((col(Invite.max_uses).is_(None)) | (col(Invite.uses) < col(Invite.max_uses)))
            .values(uses=col(Invite.uses) + 1)
        )
        result = await self.session.exec(stmt)
        return bool(result.rowcount)
