"""FSM storage in the database, inside the update's own transaction.

A conversation step (state + draft) commits together with everything else the update did, so a
crash never leaves the state advanced while the answer it recorded was rolled back. In the
polling loop, the steps of a batch's conversations are read together and written together;
nothing is kept in memory between batches (see `DbStorage`). Several processes share state
through Redis instead, with `REDIS_URL`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.delivery import TELEGRAM
from handlers.telegram.context import Batch, current_batch
from storage.db import SessionFactory, core_rows
from storage.models import FsmRecord
from storage.repo import upsert_many
from storage.repos.privacy import Forget

Step = tuple[str | None, dict[str, Any]]
# Built once (see storage.repo's check-in statements): read on a conversation's first step.
_STEP = select(col(FsmRecord.state), col(FsmRecord.data)).where(
    col(FsmRecord.key) == bindparam("key")
)


class StepStorage(BaseStorage):
    """aiogram's storage interface over whole steps (state and data read and written together)."""

    async def _read(self, key: StorageKey) -> Step:
        raise NotImplementedError

    async def _write(self, key: StorageKey, step: Step) -> None:
        raise NotImplementedError

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        _, data = await self._read(key)
        await self._write(key, (value, data))

    async def get_state(self, key: StorageKey) -> str | None:
        return (await self._read(key))[0]

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        state, _ = await self._read(key)
        await self._write(key, (state, dict(data)))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return dict((await self._read(key))[1])


class DbStorage(StepStorage):
    """aiogram storage backed by the `fsmrecord` table.

    Nothing is remembered between batches: another process (`daka erase`, the erasure job of
    `daka scheduler`) may delete a person's conversation at any time, and a step remembered
    here would then be written back with their next message, or used. A batch reads the steps
    of all its senders in one statement instead (`prefetch`), and writes them in one."""

    def __init__(self, sessions: SessionFactory, key_builder: KeyBuilder | None = None) -> None:
        self.sessions = sessions
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def _read(self, key: StorageKey) -> Step:
        name = self.key_builder.build(key)
        batch = current_batch.get()
        if batch is not None:
            if name in batch.fsm:
                return batch.fsm[name]
            if name not in batch.fsm_read:  # a group or a topic: not prefetched
                batch.fsm_read[name] = await self._select(batch.session, name)
            return batch.fsm_read[name]
        async with self.sessions() as own:  # outside any update
            return await self._select(own, name)

    async def _write(self, key: StorageKey, step: Step) -> None:
        name = self.key_builder.build(key)
        batch = current_batch.get()
        if batch is not None:
            batch.fsm[name] = step
            return
        async with self.sessions() as own:  # outside any update
            await self._upsert(own, {name: step})
            await own.commit()

    async def prefetch(self, batch: Batch, chats: Iterable[int]) -> None:
        """The steps of these private chats, in one statement, for the batch's handlers."""
        names = {self.key_builder.build(StorageKey(0, chat, chat)) for chat in chats}
        names -= batch.fsm_read.keys()
        if not names:
            return
        stmt = select(col(FsmRecord.key), col(FsmRecord.state), col(FsmRecord.data)).where(
            col(FsmRecord.key).in_(sorted(names))
        )
        found = {k: (s, dict(d)) for k, s, d in await core_rows(batch.session, stmt, {})}
        for name in names:
            batch.fsm_read[name] = found.get(name, (None, {}))

    @staticmethod
    async def _select(session: AsyncSession, name: str) -> Step:
        rows = await core_rows(session, _STEP, {"key": name})
        return (rows[0][0], dict(rows[0][1])) if rows else (None, {})

    @staticmethod
    async def _upsert(session: AsyncSession, steps: Mapping[str, Step]) -> None:
        if not steps:
            return
        rows = [{"key": k, "state": s, "data": d} for k, (s, d) in steps.items()]
        await upsert_many(session, FsmRecord, rows, key="key", update_columns=("state", "data"))

    async def flush(self, batch: Batch) -> None:
        """Write the batch's conversation steps, just before its commit."""
        await self._upsert(batch.session, batch.fsm)

    async def close(self) -> None:
        return None


class AfterCommit(StepStorage):
    """Another storage (Redis) whose writes wait until the update's transaction commits.

    Redis cannot join the database transaction, so a step written at once would survive a
    rollback: a failed commit would have cleared a confirmed draft whose check-in was never
    stored. Steps are kept with the batch instead and written once it has committed; a crash
    between the two leaves the conversation one step behind its recorded answer, never ahead."""

    def __init__(self, inner: BaseStorage) -> None:
        self.inner = inner
        self.key_builder = DefaultKeyBuilder(with_destiny=True)

    @property
    def redis(self) -> Any:
        return getattr(self.inner, "redis", None)

    async def _read(self, key: StorageKey) -> Step:
        batch = current_batch.get()
        if batch is not None:
            name = self.key_builder.build(key)
            if name in batch.fsm:
                return batch.fsm[name]
        return await self.inner.get_state(key), await self.inner.get_data(key)

    async def _write(self, key: StorageKey, step: Step) -> None:
        batch = current_batch.get()
        if batch is None:
            await self.inner.set_state(key, step[0])
            await self.inner.set_data(key, step[1])
            return
        name = self.key_builder.build(key)
        batch.fsm[name] = step
        batch.fsm_keys[name] = key

    async def apply(self, batch: Batch) -> None:
        """The batch committed: write its steps."""
        for name, (state, data) in batch.fsm.items():
            key = batch.fsm_keys[name]
            await self.inner.set_state(key, state)
            await self.inner.set_data(key, data)

    async def forget(self, batch: Batch, users: Collection[int]) -> None:
        """Clear the steps the batch wrote for these users (erased since it read them)."""
        for name in batch.fsm:
            key = batch.fsm_keys[name]
            if key.user_id in users:
                await self.inner.set_state(key, None)
                await self.inner.set_data(key, {})

    async def close(self) -> None:
        await self.inner.close()


def redis_storage(url: str) -> BaseStorage:
    """aiogram's Redis storage with Daka's keys (`fsm:{chat}:{user}:default:state|data`), for
    the conversations and for clearing them at erasure alike."""
    from aiogram.fsm.storage.redis import RedisStorage

    return RedisStorage.from_url(url, key_builder=DefaultKeyBuilder(with_destiny=True))


def redis_forgetter(url: str) -> Forget:
    """Erasure's `forget` where Telegram's state is in Redis (`REDIS_URL`): the state and the
    draft of each Telegram identity's private chat are deleted; a Redis out of reach raises
    (the erasure is then not committed, and runs again)."""

    async def forget(identities: Sequence[tuple[str, str]]) -> None:
        chats = [int(e) for c, e in identities if c == TELEGRAM and e.lstrip("-").isdigit()]
        if not chats:
            return
        storage = redis_storage(url)
        try:
            for chat in chats:
                key = StorageKey(bot_id=0, chat_id=chat, user_id=chat)  # no bot id in the keys
                await storage.set_state(key, None)
                await storage.set_data(key, {})
        finally:
            await storage.close()

    return forget
