"""Photos kept by Daka (the `photo` table): one per photo answer given, read back only for a
manager whose scope holds the member, and deleted with their answer or the member's erasure."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast as typed

from sqlalchemy import String, cast, delete, exists, literal
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import CheckIn, CheckInRevision, Member, Photo


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What is known of a photo without its bytes (for /mydata)."""

    id: int
    org_id: int
    member_id: int
    local_day: date
    question: str
    content_type: str
    size: int
    channel: str
    created_at: datetime


class PhotoRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        member: Member,
        local_day: date,
        question: str,
        content: bytes,
        content_type: str,
        channel: str,
        now: datetime,
    ) -> Photo:
        assert member.id is not None
        photo = Photo(
            org_id=member.org_id,
            member_id=member.id,
            local_day=local_day,
            question=question,
            content=content,
            content_type=content_type,
            size=len(content),
            channel=channel,
            created_at=now,
        )
        self.session.add(photo)
        await self.session.flush()
        return photo

    async def of_member(
        self, *, org_id: int, member_id: int, ids: Collection[int]
    ) -> Sequence[Photo]:
        """The photos `ids` of one member of one organisation (any other id: not found)."""
        if not ids:
            return []
        stmt = (
            select(Photo)
            .where(
                col(Photo.id).in_(set(ids)),
                col(Photo.org_id) == org_id,
                col(Photo.member_id) == member_id,
            )
            .order_by(col(Photo.id))
        )
        return (await self.session.exec(stmt)).all()

    async def infos(self, *, member_ids: Collection[int]) -> list[PhotoInfo]:
        """The members' photos, without their bytes."""
        if not member_ids:
            return []
        stmt = (
            select(Photo)
            .options(defer(typed("QueryableAttribute[bytes]", Photo.content)))
            .where(col(Photo.member_id).in_(set(member_ids)))
            .order_by(col(Photo.id))
        )
        return [
            PhotoInfo(
                id=p.id or 0,
                org_id=p.org_id,
                member_id=p.member_id,
                local_day=p.local_day,
                question=p.question,
                content_type=p.content_type,
                size=p.size,
                channel=p.channel,
                created_at=p.created_at,
            )
            for p in (await self.session.exec(stmt)).all()
        ]

    async def delete_answers(
        self, *, member_id: int, local_day: date, questions: Collection[str]
    ) -> int:
        """The photos of these answers of one check-in (every version, and any sent to a
        draft of that day), gone with the answers."""
        if not questions:
            return 0
        result = await self.session.exec(
            delete(Photo).where(
                col(Photo.member_id) == member_id,
                col(Photo.local_day) == local_day,
                col(Photo.question).in_(set(questions)),
            )
        )
        return int(result.rowcount or 0)

    async def delete_ids(self, *, member_id: int, ids: Collection[int]) -> int:
        """These photos of one member (a draft's, given up or replaced)."""
        if not ids:
            return 0
        result = await self.session.exec(
            delete(Photo).where(col(Photo.member_id) == member_id, col(Photo.id).in_(set(ids)))
        )
        return int(result.rowcount or 0)

    async def delete_member(self, *, member_id: int) -> int:
        result = await self.session.exec(delete(Photo).where(col(Photo.member_id) == member_id))
        return int(result.rowcount or 0)

    async def delete_unsubmitted(self, *, org_id: int, before: date) -> int:
        """Photos no answer holds, a day before `before` (a draft lives one local day): those
        of drafts never submitted, or replaced by a later draft of a day already checked in
        ("answer again", then given up). A photo stays while its member's check-in of that
        day, or any revision of it, holds its `media:<id>`; members under a legal hold keep
        theirs."""
        quoted = literal('"media:') + cast(Photo.id, String) + literal('"')  # as JSON has it
        in_checkin = exists().where(
            col(CheckIn.member_id) == col(Photo.member_id),
            col(CheckIn.local_day) == col(Photo.local_day),
            cast(CheckIn.answers, String).contains(quoted),
        )
        in_revision = exists().where(
            col(CheckInRevision.member_id) == col(Photo.member_id),
            col(CheckInRevision.local_day) == col(Photo.local_day),
            cast(CheckInRevision.answers, String).contains(quoted),
        )
        held = select(col(Member.id)).where(
            col(Member.org_id) == org_id, col(Member.hold_reason).is_not(None)
        )
        result = await self.session.exec(
            delete(Photo).where(
                col(Photo.org_id) == org_id,
                col(Photo.local_day) < before,
                ~in_checkin,
                ~in_revision,
                col(Photo.member_id).not_in(held),
            )
        )
        return int(result.rowcount or 0)
