"""FSM storage in the database, inside the update's own transaction.

A conversation step (state + draft) commits together with everything else the update did, so a
crash never leaves the state advanced while the answer it recorded was rolled back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.context import current_session
from storage.db import SessionFactory
from storage.models import FsmRecord


class DbStorage(BaseStorage):
    """aiogram storage backed by the `fsmrecord` table."""

    def __init__(self, sessions: SessionFactory, key_builder: KeyBuilder | None = None) -> None:
        self.sessions = sessions
        self.key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def _run(self, key: StorageKey, change: Any) -> Any:
        session = current_session.get()
        if session is not None:
            return await change(session, self.key_builder.build(key))
        async with self.sessions() as own, own.begin():
            return await change(own, self.key_builder.build(key))

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state

        async def change(session: AsyncSession, name: str) -> None:
            record = await session.get(FsmRecord, name)
            if record is None:
                if value is None:
                    return
                record = FsmRecord(key=name, state=value, data={})
                session.add(record)
            else:
                record.state = value
            await session.flush()

        await self._run(key, change)

    async def get_state(self, key: StorageKey) -> str | None:
        async def read(session: AsyncSession, name: str) -> str | None:
            record = await session.get(FsmRecord, name)
            return record.state if record else None

        result: str | None = await self._run(key, read)
        return result

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        async def change(session: AsyncSession, name: str) -> None:
            record = await session.get(FsmRecord, name)
            if record is None:
                if not data:
                    return
                record = FsmRecord(key=name, state=None, data=dict(data))
                session.add(record)
            else:
                record.data = dict(data)
            await session.flush()

        await self._run(key, change)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        async def read(session: AsyncSession, name: str) -> dict[str, Any]:
            record = await session.get(FsmRecord, name)
            return dict(record.data) if record else {}

        result: dict[str, Any] = await self._run(key, read)
        return result

    async def close(self) -> None:
        return None
