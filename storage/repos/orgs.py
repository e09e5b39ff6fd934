"""Organisations: created by the CLI, found by slug or id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Organisation
from storage.repos.common import Conflict, NotFound


class OrgRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, *, slug: str, name: str, timezone: str, language: str, form: str, now: datetime
    ) -> Organisation:
        if await self.by_slug(slug=slug) is not None:
            raise Conflict(f"organisation {slug!r} already exists")
        org = Organisation(
            slug=slug, name=name, timezone=timezone, language=language, form=form, created_at=now
        )
        self.session.add(org)
        await self.session.flush()
        return org

    async def every(self) -> Sequence[Organisation]:
        """All organisations, oldest first."""
        return (await self.session.exec(select(Organisation).order_by(col(Organisation.id)))).all()

    async def by_slug(self, *, slug: str) -> Organisation | None:
        return (
            await self.session.exec(select(Organisation).where(Organisation.slug == slug))
        ).first()

    async def require(self, *, slug: str) -> Organisation:
        org = await self.by_slug(slug=slug)
        if org is None:
            raise NotFound(f"no organisation {slug!r}")
        return org

    async def get(self, *, org_id: int) -> Organisation:
        org = await self.session.get(Organisation, org_id)
        if org is None:
            raise NotFound(f"no organisation #{org_id}")
        return org
