"""Conversation state: written with the update's commit, never ahead of it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from redis.exceptions import RedisError
from sqlmodel import select

from domain.clock import FixedClock
from handlers.telegram.context import Batch, current_batch
from handlers.telegram.fsm import AfterCommit, DbStorage, redis_forgetter
from handlers.telegram.fsm import redis_storage as create_redis_storage
from scheduler.jobs import erase_withdrawn_now
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.models import FsmRecord, Member
from tests.storage.test_withdrawal import seed, withdraw

KEY = StorageKey(bot_id=42, chat_id=7, user_id=7)


@pytest.fixture
async def redis_storage(redis_url: str) -> AsyncIterator[AfterCommit]:
    storage = AfterCommit(
        RedisStorage.from_url(redis_url, key_builder=DefaultKeyBuilder(with_destiny=True))
    )
    yield storage
    await storage.close()


async def test_redis_steps_wait_for_the_commit(
    redis_storage: AfterCommit, sessions: SessionFactory
) -> None:
    await redis_storage.set_state(KEY, "Checkin:temperature")
    await redis_storage.set_data(KEY, {"location": [39.9, 116.4]})
    async with sessions() as session:
        batch = Batch(session=session)
        token = current_batch.set(batch)
        try:
            await redis_storage.set_state(KEY, "Checkin:symptoms")
            await redis_storage.set_data(KEY, {"location": [39.9, 116.4], "temperature": 36.6})
            # The handler sees its own step...
            assert await redis_storage.get_state(KEY) == "Checkin:symptoms"
        finally:
            current_batch.reset(token)
        # ...Redis does not, until the batch has committed.
        assert await redis_storage.inner.get_state(KEY) == "Checkin:temperature"
        assert await redis_storage.inner.get_data(KEY) == {"location": [39.9, 116.4]}
        await redis_storage.apply(batch)
    assert await redis_storage.inner.get_state(KEY) == "Checkin:symptoms"
    assert (await redis_storage.inner.get_data(KEY))["temperature"] == 36.6


async def test_a_batch_that_never_commits_leaves_redis_as_it_was(
    redis_storage: AfterCommit, sessions: SessionFactory
) -> None:
    """Regression: a confirmed draft was cleared in Redis although its check-in rolled back."""
    await redis_storage.set_state(KEY, "Checkin:confirm")
    await redis_storage.set_data(KEY, {"temperature": 36.6})
    async with sessions() as session:
        token = current_batch.set(Batch(session=session))
        try:
            await redis_storage.set_state(KEY, None)
            await redis_storage.set_data(KEY, {})
        finally:
            current_batch.reset(token)
        await session.rollback()
    assert await redis_storage.get_state(KEY) == "Checkin:confirm"
    assert await redis_storage.get_data(KEY) == {"temperature": 36.6}


async def in_batch(
    storage: DbStorage, sessions: SessionFactory, chat: int, step: Callable[[], Awaitable[Any]]
) -> Any:
    """One polling batch from chat `chat`: read, `step`, write, commit."""
    async with sessions() as session:
        batch = Batch(session=session)
        await storage.prefetch(batch, [chat])
        token = current_batch.set(batch)
        try:
            done = await step()
        finally:
            current_batch.reset(token)
        await storage.flush(batch)
        await session.commit()
    return done


async def test_replicas_without_redis_do_not_remember_stale_steps(
    sessions: SessionFactory,
) -> None:
    a, b = DbStorage(sessions), DbStorage(sessions)
    for storage, state in ((a, "Checkin:location"), (b, "Checkin:temperature")):

        async def step(storage: DbStorage = storage, state: str = state) -> None:
            assert await storage.get_state(KEY) in (None, "Checkin:location")
            await storage.set_state(KEY, state)

        await in_batch(storage, sessions, 7, step)
    assert await in_batch(a, sessions, 7, lambda: a.get_state(KEY)) == "Checkin:temperature"


@pytest.mark.parametrize("where", ["another process", "the bot's process"])
async def test_an_erased_draft_is_neither_seen_nor_written_back(
    sessions: SessionFactory, clock: FixedClock, database_url: str, where: str
) -> None:
    """Regression ("erased draft brought back by a cache"): the bot kept member 1's last step
    in memory; the erasure job (of another process, with its own engine, or of the bot's own
    scheduler) deleted it; the bot's next batch for them neither sees the draft nor, setting
    only the state (which keeps the data), writes it back. Member 2's draft is still theirs."""
    org_id = await seed(sessions, clock)
    await withdraw(sessions, clock, org_id)
    bot = DbStorage(sessions)
    for chat in (101, 102):
        key = StorageKey(bot_id=42, chat_id=chat, user_id=chat)

        async def start(key: StorageKey = key) -> None:
            await bot.set_state(key, "CheckInForm:answering")
            await bot.set_data(key, {"draft": {"temperature": 37.9}})

        await in_batch(bot, sessions, chat, start)
    clock.advance(timedelta(days=7))
    elsewhere = create_engine(database_url)
    erasing = create_session_factory(elsewhere) if where == "another process" else sessions
    try:
        assert await erase_withdrawn_now(erasing, clock) == [("s", "1")]
    finally:
        await elsewhere.dispose()

    one = StorageKey(bot_id=42, chat_id=101, user_id=101)

    async def next_message() -> tuple[str | None, dict[str, Any]]:
        seen = (await bot.get_state(one), await bot.get_data(one))
        await bot.set_state(one, "Enrol:consent")
        return seen

    assert await in_batch(bot, sessions, 101, next_message) == (None, {})
    async with sessions() as session:
        rows = {r.key: r.data for r in (await session.exec(select(FsmRecord))).all()}
    assert rows["fsm:101:101:default"] == {}
    assert rows["fsm:102:102:default"] == {"draft": {"temperature": 37.9}}


async def chat_step(storage: BaseStorage, chat: int) -> tuple[str | None, dict[str, Any]]:
    key = StorageKey(bot_id=42, chat_id=chat, user_id=chat)
    return await storage.get_state(key), await storage.get_data(key)


async def start_drafts(storage: BaseStorage, *chats: int) -> None:
    """A check-in draft under way in each private chat, in Redis as the bot keeps it."""
    for chat in chats:
        key = StorageKey(bot_id=42, chat_id=chat, user_id=chat)
        await storage.set_state(key, "CheckInForm:answering")
        await storage.set_data(key, {"draft": {"temperature": 37.9}})


async def test_erasure_clears_the_members_telegram_state_in_redis_and_nobody_elses(
    redis_url: str, sessions: SessionFactory, clock: FixedClock
) -> None:
    """Regression ("Redis state not erased"): member 1 (Telegram 101) withdrew; once the grace
    period is over, the erasure job deletes their draft in Redis too, not member 2's (102)."""
    org_id = await seed(sessions, clock)
    await withdraw(sessions, clock, org_id)
    storage = create_redis_storage(redis_url)
    try:
        await start_drafts(storage, 101, 102)
        clock.advance(timedelta(days=7))
        forget = redis_forgetter(redis_url)
        assert await erase_withdrawn_now(sessions, clock, forget) == [("s", "1")]
        assert await chat_step(storage, 101) == (None, {})
        assert await storage.redis.keys("fsm:101:*") == []  # type: ignore[attr-defined]
        assert await chat_step(storage, 102) == (
            "CheckInForm:answering",
            {"draft": {"temperature": 37.9}},
        )
    finally:
        await storage.close()


async def test_an_erasure_that_cannot_reach_redis_is_not_committed_and_runs_again(
    redis_url: str, sessions: SessionFactory, clock: FixedClock
) -> None:
    """Redis out of reach: the job fails before its commit, so member 1 is still due (their
    answers and their draft in the database kept), and the next run erases everything."""
    org_id = await seed(sessions, clock)
    await withdraw(sessions, clock, org_id)
    storage = create_redis_storage(redis_url)
    try:
        await start_drafts(storage, 101)
        clock.advance(timedelta(days=7))
        with pytest.raises(RedisError):
            await erase_withdrawn_now(sessions, clock, redis_forgetter(closed_redis()))
        async with sessions() as session:
            member = (await session.exec(select(Member).where(Member.external_id == "1"))).one()
            drafts = [d.key for d in (await session.exec(select(FsmRecord))).all()]
        assert member.erased_at is None and "fsm:101:101:default" in drafts
        assert (await chat_step(storage, 101))[0] == "CheckInForm:answering"

        assert await erase_withdrawn_now(sessions, clock, redis_forgetter(redis_url)) == [
            ("s", "1")
        ]
        assert await chat_step(storage, 101) == (None, {})
    finally:
        await storage.close()


def closed_redis() -> str:
    """A Redis URL nothing listens on (a port bound once by us, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"
