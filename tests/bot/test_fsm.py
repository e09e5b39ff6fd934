"""Conversation state: written with the update's commit, never ahead of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage

from handlers.telegram.context import Batch, current_batch
from handlers.telegram.fsm import AfterCommit, DbStorage
from storage.db import SessionFactory

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


async def test_replicas_without_redis_do_not_remember_stale_steps(
    sessions: SessionFactory,
) -> None:
    a, b = DbStorage(sessions, cache=False), DbStorage(sessions, cache=False)
    for storage, state in ((a, "Checkin:location"), (b, "Checkin:temperature")):
        async with sessions() as session:
            batch = Batch(session=session)
            token = current_batch.set(batch)
            try:
                assert await storage.get_state(KEY) in (None, "Checkin:location")
                await storage.set_state(KEY, state)
            finally:
                current_batch.reset(token)
            await storage.flush(batch)
            await session.commit()
            storage.committed(batch)
    async with sessions() as session:
        token = current_batch.set(Batch(session=session))
        try:
            assert await a.get_state(KEY) == "Checkin:temperature"
        finally:
            current_batch.reset(token)
