"""Batches of WeCom turns side by side: each transaction keeps its own prepared turns, so the
steps one batch left to its `finish` (and its erasure check) are never lost to another batch
that prepared meanwhile (regression: the prepared batch was kept on the app's `WeComTurns`,
and a second worker's `prepare` made the first batch commit without its steps)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, select

from domain.clock import SystemClock
from domain.conversation.io import Person
from handlers.wecom import inbox as inbox_module
from handlers.wecom.inbox import Inbox
from handlers.wecom.messages import TextMessage
from handlers.wecom.replies import Record
from handlers.wecom.turns import WeComTurns
from storage.conversation_state import StoredState
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.models import FsmRecord
from storage.repo import Repo


def _state_of(session: Any, person: Person) -> StoredState:
    return StoredState(
        session, channel=person.channel, external_id=person.external_id, deferred=True
    )


class _Replies:
    async def send(self, sender: str, records: list[Record]) -> None:
        return None


@pytest.fixture
async def sessions(tmp_path: Path) -> Any:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'batches.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
    yield create_session_factory(engine)
    await engine.dispose()


async def _steps(sessions: SessionFactory) -> list[tuple[str, str | None]]:
    async with sessions() as session:
        rows = (await session.exec(select(FsmRecord))).all()
    return sorted((row.key, row.state) for row in rows)


def _message(user: str, msg_id: str) -> TextMessage:
    return TextMessage(user, 1, 2, content="x", msg_id=msg_id)


async def test_a_batch_prepared_meanwhile_leaves_the_first_its_steps(
    sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = WeComTurns(None, _state_of, SystemClock(), 1)  # type: ignore[arg-type]

    async def converse(turn: Any, *_: Any) -> None:
        await turn.state.set_state("step-2")

    monkeypatch.setattr(turns, "_converse", converse)
    alice, bob = _message("alice", "1"), _message("bob", "2")
    async with sessions() as first, sessions() as second:
        one, other = Repo(first), Repo(second)
        await turns.prepare(one, [alice])
        await turns.answer(one, alice)  # its step left to `finish`
        await turns.prepare(other, [bob])  # another worker's batch, before the writer
        await turns.finish(one)
        await first.commit()
    assert await _steps(sessions) == [("wecom:alice", "step-2")]


async def test_a_slow_turn_with_batches_beside_it_loses_no_step(
    sessions: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "STUCK_AFTER", 0.01)  # a worker beside at once
    turns = WeComTurns(None, _state_of, SystemClock(), 1)  # type: ignore[arg-type]
    slow_started, release = asyncio.Event(), asyncio.Event()

    async def converse(turn: Any, out: Any, event: TextMessage, *_: Any) -> None:
        await turn.state.set_state(f"step-{event.msg_id}")
        if event.user == "slow":  # a photo downloaded, a place looked up
            slow_started.set()
            await release.wait()

    monkeypatch.setattr(turns, "_converse", converse)
    inbox = Inbox(sessions, SystemClock(), turns, _Replies())  # type: ignore[arg-type]
    await asyncio.gather(inbox.take(_message("alice", "1")), inbox.take(_message("slow", "2")))
    await asyncio.wait_for(slow_started.wait(), 10)
    await asyncio.sleep(0.05)  # the first batch is past STUCK_AFTER: the next go beside it
    await asyncio.gather(inbox.take(_message("bob", "3")), inbox.take(_message("carol", "4")))
    await asyncio.sleep(0.05)  # their batch prepares (before the writer) and runs
    release.set()
    await asyncio.wait_for(inbox.idle(), 30)
    assert inbox.handled == 4
    assert await _steps(sessions) == [
        ("wecom:alice", "step-1"),
        ("wecom:bob", "step-3"),
        ("wecom:carol", "step-4"),
        ("wecom:slow", "step-2"),
    ]
