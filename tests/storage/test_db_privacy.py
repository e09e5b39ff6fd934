"""Errors from the database must not carry what people answered into the logs."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from storage.db import SessionFactory
from storage.models import Organisation
from tests.conftest import MORNING


async def test_a_database_error_does_not_quote_the_values(sessions: SessionFactory) -> None:
    secret = "36.9℃-and-39.9087,116.3975"

    def org() -> Organisation:
        return Organisation(
            slug="a", name=secret, timezone="UTC", language="zh", form="health", created_at=MORNING
        )

    async with sessions() as session:
        session.add(org())
        await session.commit()
    async with sessions() as session:
        session.add(org())  # the same slug again
        with pytest.raises(IntegrityError) as raised:
            await session.commit()
    assert secret not in str(raised.value)
    assert "hidden due to hide_parameters" in str(raised.value)
