"""Conversation state of channels other than Telegram (storage.conversation_state): one row per
person and channel, written in the turn's transaction (committed with it, rolled back with it),
beside Telegram's rows, which it never touches. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.conversation_state import StoredState, flush_later, flush_steps, read_steps, state_key
from storage.db import SessionFactory
from storage.models import FsmRecord, Identity, Member
from storage.repo import Repo
from tests.storage.seeding import seed_school

TELEGRAM_ROW = "fsm:7:7:default"  # what aiogram's storage writes for Telegram user 7


async def rows(sessions: SessionFactory) -> dict[str, tuple[str | None, dict[str, object]]]:
    async with sessions() as session:
        return {r.key: (r.state, r.data) for r in (await session.exec(select(FsmRecord))).all()}


async def test_a_step_commits_with_the_turn_and_is_read_by_the_next(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        state = StoredState(session, channel="wecom", external_id="zhangsan")
        assert await state.get_state() is None and await state.get_data() == {}
        await state.set_state("CheckInForm:answering")
        await state.set_data({"draft": "d1", "answers": {"temperature": 36.6}})
        await state.update_data(q="symptoms")
        assert await state.get_state() == "CheckInForm:answering"  # its own step, before commit
        await session.commit()
    assert await rows(sessions) == {
        "wecom:zhangsan": (
            "CheckInForm:answering",
            {"draft": "d1", "answers": {"temperature": 36.6}, "q": "symptoms"},
        )
    }
    async with sessions() as session:
        state = StoredState(session, channel="wecom", external_id="zhangsan")
        assert await state.get_state() == "CheckInForm:answering"
        assert (await state.get_data())["answers"] == {"temperature": 36.6}


async def test_a_turn_rolled_back_leaves_the_step_as_it_was(sessions: SessionFactory) -> None:
    async with sessions() as session:
        state = StoredState(session, channel="wecom", external_id="zhangsan")
        await state.set_state("CheckInForm:summary")
        await state.set_data({"draft": "d1"})
        await session.commit()
    async with sessions() as session:
        state = StoredState(session, channel="wecom", external_id="zhangsan")
        await state.clear()  # the check-in was confirmed...
        await session.rollback()  # ...but its transaction failed
    assert await rows(sessions) == {"wecom:zhangsan": ("CheckInForm:summary", {"draft": "d1"})}


async def test_an_ended_conversation_leaves_no_row_and_telegrams_rows_are_not_touched(
    sessions: SessionFactory,
) -> None:
    async with sessions() as session:
        session.add(FsmRecord(key=TELEGRAM_ROW, state="Enrol:name", data={"code": "abc"}))
        on_wecom = StoredState(session, channel="wecom", external_id="7")
        await on_wecom.set_state("Enrol:consent")
        await on_wecom.update_data({"code": "xyz"})
        await session.commit()
    assert set(await rows(sessions)) == {TELEGRAM_ROW, "wecom:7"}
    async with sessions() as session:
        on_wecom = StoredState(session, channel="wecom", external_id="7")
        assert await on_wecom.get_data() == {"code": "xyz"}  # its own, not Telegram's
        await on_wecom.clear()
        await on_wecom.clear()  # twice: nothing more to do
        assert await on_wecom.get_state() is None
        await session.commit()
    assert await rows(sessions) == {TELEGRAM_ROW: ("Enrol:name", {"code": "abc"})}


async def test_what_the_caller_changes_afterwards_is_not_stored(sessions: SessionFactory) -> None:
    async with sessions() as session:
        state = StoredState(session, channel="wecom", external_id="lisi")
        draft = {"answers": {"temperature": 36.6}}
        await state.set_data(draft)
        draft["answers"]["temperature"] = 40.0
        read = await state.get_data()
        read["answers"]["temperature"] = 41.0
        assert await state.get_data() == {"answers": {"temperature": 36.6}}
        await session.commit()
    assert (await rows(sessions))["wecom:lisi"] == (None, {"answers": {"temperature": 36.6}})


async def test_steps_left_to_flush_later_are_written_together_before_the_commit(
    sessions: SessionFactory,
) -> None:
    """The turns of one WeCom transaction write their last steps together: the one that goes
    on and the new one upserted, the ended one deleted, the unchanged one not written."""
    async with sessions() as session:
        for eid, step in (("ended", "Enrol:consent"), ("same", "CheckInForm:summary")):
            state = StoredState(session, channel="wecom", external_id=eid)
            await state.set_state(step)
        await session.commit()
    async with sessions() as session:
        states = {
            eid: StoredState(session, channel="wecom", external_id=eid, deferred=True)
            for eid in ("ended", "same", "new")
        }
        await read_steps(session, list(states.values()))
        await states["ended"].clear()
        await states["new"].set_state("CheckInForm:answering")
        await states["new"].update_data(q="temperature")
        for state in states.values():
            flush_later(state)
        assert set(await rows_in(session)) == {"wecom:ended", "wecom:same"}  # not yet
        await flush_steps(session)
        await flush_steps(session)  # twice: nothing more to do
        await session.commit()
    assert await rows(sessions) == {
        "wecom:same": ("CheckInForm:summary", {}),
        "wecom:new": ("CheckInForm:answering", {"q": "temperature"}),
    }


async def test_an_erasure_in_the_transaction_finds_the_steps_left_to_flush_written(
    sessions: SessionFactory,
) -> None:
    """A turn of the batch left its step to flush later; a later turn of the same transaction
    erases that person: the erasure writes the step first, then deletes it with their other
    conversations (counted), and nothing brings it back at the end of the batch."""
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    async with sessions() as session:
        repo = Repo(session)
        _, members = await seed_school(repo, now=now - timedelta(days=10))
        member = members["1"]
        assert member.account_id is not None
        session.add(
            Identity(
                channel="wecom", external_id="zs", account_id=member.account_id, created_at=now
            )
        )
        await session.commit()
    async with sessions() as session:
        repo = Repo(session)
        state = StoredState(session, channel="wecom", external_id="zs", deferred=True)
        await state.set_state("CheckInForm:answering")
        flush_later(state)  # the member's own turn
        member = (await session.exec(select(Member).where(Member.external_id == "1"))).one()
        erased = await repo.privacy.erase(member=member, actor="x", why="test", now=now)
        assert erased.conversations == 1
        await flush_steps(session)  # the end of the batch
        await session.commit()
    assert "wecom:zs" not in await rows(sessions)


async def rows_in(session: AsyncSession) -> list[str]:
    return [r.key for r in (await session.exec(select(FsmRecord))).all()]


def test_keys_are_per_channel_and_person() -> None:
    assert state_key("wecom", "zhangsan") == "wecom:zhangsan"
    assert state_key("wecom", "a:b") == "wecom:a:b"  # the channel's ids are theirs to choose
    for channel, external_id in (
        ("telegram", "7"),  # aiogram's keys, kept by handlers.telegram.fsm
        ("fsm", "7"),
        ("we:com", "7"),
        ("", "7"),
        ("wecom", ""),
        ("wecom", "x" * 200),
    ):
        with pytest.raises(ValueError):
            state_key(channel, external_id)
