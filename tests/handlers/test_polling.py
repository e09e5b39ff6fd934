"""Long polling with the journal: an update aiogram cannot read stops nothing.

Regression: one update that could not be parsed into aiogram's models failed the whole
getUpdates answer, which stopped the poller; never confirmed, it stopped it again after every
restart."""

from __future__ import annotations

import logging

import pytest
from sqlmodel import col, select

from storage.models import InboundUpdate
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka

BROKEN = {"message": {"message_id": 1, "text": "ni hao, no chat and no date"}}


def skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]


async def handled_ids(daka: Daka) -> list[int]:
    async with daka.sessions() as session:
        stmt = select(InboundUpdate.update_id).where(col(InboundUpdate.handled_at).is_not(None))
        return sorted((await session.exec(stmt)).all())


async def test_an_unreadable_update_between_two_good_ones_is_logged_confirmed_and_skipped(
    daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    user = server.user(5005, language_code="en")
    before = user.send("/help")
    broken = server.push_update(BROKEN)
    after = user.send("/language")
    assert "/checkin" in (await user.next_reply()).text
    assert "Choose your language" in (await user.next_reply()).text
    await daka.settled()
    await server.wait_for(lambda: server.confirmed_offset > after, message="never confirmed")
    assert server.pending_updates() == 0
    assert await handled_ids(daka) == [before, broken, after]
    [line] = skipped(caplog)
    assert f"update {broken} cannot be read" in line and "ni hao" not in line
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    assert "/checkin" in (await user.ask("/help")).text  # still polling


async def test_an_unreadable_first_update_after_a_restart_is_skipped_once(
    daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    user = server.user(5006, language_code="en")
    await daka.stop()
    broken = server.push_update(BROKEN)  # waiting when the bot starts, as after a crash
    await daka.start()
    await daka.settled()
    assert broken in await handled_ids(daka)
    await daka.restart()
    assert "/checkin" in (await user.ask("/help")).text
    assert len(skipped(caplog)) == 1
