"""A person's conversation state (the core's `domain.conversation.io.State`: a state name and a
little JSON, such as a check-in draft) in the `fsmrecord` table, written in the turn's own
transaction, so a step commits with everything the turn did or not at all.

Keys. Telegram's rows keep aiogram's keys, `fsm:{chat_id}:{user_id}:default` (its
`DefaultKeyBuilder` with the destiny; in a private chat the chat is the user), and Telegram keeps
its own storage of them (`handlers.telegram.fsm`: read and written once per polling batch, or in
Redis): every conversation in flight goes on as it was, and the update path keeps what the
batching buys. Every other channel keys a person's conversation by who they
are there, `{channel}:{external_id}` ("wecom:zhangsan"), which no Telegram key can equal (they
all begin "fsm:", and no channel is called "fsm"). So one person has one conversation per
channel, as they have one chat per channel."""

from __future__ import annotations

from copy import deepcopy
from typing import Any, Final

from sqlalchemy import bindparam, delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.delivery import TELEGRAM
from storage.db import core_rows
from storage.models import FsmRecord
from storage.repos.common import upsert_many

Step = tuple[str | None, dict[str, Any]]

MAX_KEY: Final = 200  # FsmRecord.key's length
TELEGRAM_PREFIX: Final = "fsm"

_STEP = select(col(FsmRecord.state), col(FsmRecord.data)).where(
    col(FsmRecord.key) == bindparam("key")
)


def state_key(channel: str, external_id: str) -> str:
    """The row of `external_id`'s conversation on `channel` (not Telegram, whose rows are
    aiogram's and kept by its adapter)."""
    if channel == TELEGRAM:
        raise ValueError("Telegram's conversations are kept by handlers.telegram.fsm")
    if not channel or channel == TELEGRAM_PREFIX or ":" in channel:
        raise ValueError(f"not a channel name: {channel!r}")
    key = f"{channel}:{external_id}"
    if not external_id or len(key) > MAX_KEY:
        raise ValueError(f"not an id of a person on {channel}: {external_id!r}")
    return key


class StoredState:
    """The conversation of one person on one channel during one turn: read once (when first
    asked), then each change written into the turn's session at once (no step can be left
    unsaved), never committed here. A conversation that ends (no state, no data) leaves no
    row behind."""

    __slots__ = ("_step", "key", "session")

    def __init__(self, session: AsyncSession, *, channel: str, external_id: str) -> None:
        self.session = session
        self.key = state_key(channel, external_id)
        self._step: Step | None = None

    async def _read(self) -> Step:
        if self._step is None:
            rows = await core_rows(self.session, _STEP, {"key": self.key})
            self._step = (rows[0][0], dict(rows[0][1])) if rows else (None, {})
        return self._step

    async def _write(self, state: str | None, data: dict[str, Any]) -> None:
        if state is None and not data:
            if await self._read() != (None, {}):
                self._step = (None, {})
                await self.session.exec(delete(FsmRecord).where(col(FsmRecord.key) == self.key))
            return
        self._step = (state, deepcopy(data))  # what the caller changes later is not written
        row = {"key": self.key, "state": state, "data": self._step[1]}
        await upsert_many(
            self.session, FsmRecord, [row], key="key", update_columns=("state", "data")
        )

    async def get_state(self) -> str | None:
        return (await self._read())[0]

    async def set_state(self, state: Any = None) -> None:
        """`state` is a state's name (or an object with a `state` name, as aiogram's are)."""
        value = getattr(state, "state", state)
        await self._write(value, (await self._read())[1])

    async def get_data(self) -> dict[str, Any]:
        return deepcopy((await self._read())[1])

    async def set_data(self, data: dict[str, Any]) -> None:
        await self._write((await self._read())[0], data)

    async def update_data(
        self, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        state, current = await self._read()
        merged = {**current, **(data or {}), **kwargs}
        await self._write(state, merged)
        return deepcopy(merged)

    async def clear(self) -> None:
        await self._write(None, {})
