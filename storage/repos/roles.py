"""Role grants: who manages which unit of which organisation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import columns_of, core_rows, detached, detached_once
from storage.models import Organisation, RoleGrant

# Built once (each batch of turns reads its visitors' roles), as Core rows: the turns only
# read the grants and their organisations.
_GRANT_COLUMNS = columns_of(RoleGrant)
_ACTIVE_MANY = (
    select(*_GRANT_COLUMNS, *columns_of(Organisation))
    .join(Organisation, col(Organisation.id) == col(RoleGrant.org_id))
    .where(col(RoleGrant.account_id).in_(bindparam("ids", expanding=True)))
    .where(col(RoleGrant.revoked_at).is_(None))
    .order_by(col(RoleGrant.id))
)


class RoleRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def grant(
        self, *, org_id: int, account_id: int, unit_id: int | None, role: str, now: datetime
    ) -> RoleGrant:
        for existing in await self.active(account_id=account_id, org_id=org_id):
            if existing.unit_id == unit_id and existing.role == role:
                return existing
        grant = RoleGrant(
            org_id=org_id, account_id=account_id, unit_id=unit_id, role=role, granted_at=now
        )
        self.session.add(grant)
        await self.session.flush()
        return grant

    async def active_many(
        self, *, account_ids: Sequence[int]
    ) -> Sequence[tuple[RoleGrant, Organisation]]:
        """The roles held by these accounts, with their organisations: to read, not the
        session's objects (`active` gives those, to revoke one)."""
        rows = await core_rows(self.session, _ACTIVE_MANY, {"ids": list(account_ids)})
        width = len(_GRANT_COLUMNS)
        orgs: dict[int, Organisation] = {}
        found = []
        for row in rows:
            grant = detached(RoleGrant, row[:width])
            found.append((grant, detached_once(orgs, grant.org_id, Organisation, row[width:])))
        return found

    async def active(self, *, account_id: int, org_id: int | None = None) -> Sequence[RoleGrant]:
        stmt = select(RoleGrant).where(
            RoleGrant.account_id == account_id, col(RoleGrant.revoked_at).is_(None)
        )
        if org_id is not None:
            stmt = stmt.where(RoleGrant.org_id == org_id)
        return (await self.session.exec(stmt.order_by(col(RoleGrant.id)))).all()
