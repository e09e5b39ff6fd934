"""Accounts: the people Daka knows, with their enrolment tries and consents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Account, Consent, EnrolAttempt


class AccountRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, *, telegram_id: int) -> Account | None:
        return await self.session.get(Account, telegram_id)

    async def many(self, *, telegram_ids: Sequence[int]) -> Sequence[Account]:
        stmt = select(Account).where(col(Account.telegram_id).in_(list(telegram_ids)))
        return (await self.session.exec(stmt)).all()

    async def ensure(self, *, telegram_id: int, now: datetime) -> Account:
        account = await self.get(telegram_id=telegram_id)
        if account is None:
            account = Account(telegram_id=telegram_id, first_seen=now)
            self.session.add(account)
            await self.session.flush()
        return account

    async def record_attempt(
        self, *, telegram_id: int, org_id: int, external_id: str, outcome: str, now: datetime
    ) -> None:
        self.session.add(
            EnrolAttempt(
                telegram_id=telegram_id,
                org_id=org_id,
                external_id=external_id[:64],
                outcome=outcome,
                at=now,
            )
        )
        await self.session.flush()

    async def record_consent(
        self, *, telegram_id: int, org_id: int, version: int, accepted: bool, now: datetime
    ) -> None:
        self.session.add(
            Consent(
                telegram_id=telegram_id, org_id=org_id, version=version, accepted=accepted, at=now
            )
        )
        await self.session.flush()

    async def consent(self, *, telegram_id: int, org_id: int) -> Consent | None:
        stmt = (
            select(Consent)
            .where(Consent.telegram_id == telegram_id, Consent.org_id == org_id)
            .order_by(col(Consent.id).desc())
        )
        return (await self.session.exec(stmt)).first()
