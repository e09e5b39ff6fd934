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

from collections.abc import Sequence
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
_PENDING: Final = "daka_pending_steps"  # session.info: the steps `flush_later` left to write

_STEP = select(col(FsmRecord.state), col(FsmRecord.data)).where(
    col(FsmRecord.key) == bindparam("key")
)
_STEPS = select(col(FsmRecord.key), col(FsmRecord.state), col(FsmRecord.data)).where(
    col(FsmRecord.key).in_(bindparam("keys", expanding=True))
)


def copied(data: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a state's data, which is JSON (dicts, lists, strings, numbers): some
    five times faster than `copy.deepcopy`, which a WeCom turn ran three times (its memo and
    dispatch were a tenth of the turn); anything else in it is copied by `deepcopy`."""
    return {key: _copied(value) for key, value in data.items()}


def _copied(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _copied(item) for key, item in value.items()}
    if kind is list:
        return [_copied(item) for item in value]
    return deepcopy(value)


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
    asked, or by `read_steps` for the turns of a batch), then each change written into the
    turn's session at once (no step can be left unsaved), never committed here. `deferred`:
    only the last step is written, by `flush` at the end of the turn (a turn steps two or
    three times; WeCom's turns flush). A conversation that ends (no state, no data) leaves
    no row behind."""

    __slots__ = ("_deferred", "_step", "_stored", "key", "session")

    def __init__(
        self, session: AsyncSession, *, channel: str, external_id: str, deferred: bool = False
    ) -> None:
        self.session = session
        self.key = state_key(channel, external_id)
        self._step: Step | None = None
        self._stored: Step | None = None  # the row as read or last written
        self._deferred = deferred

    async def _read(self) -> Step:
        if self._step is None:
            rows = await core_rows(self.session, _STEP, {"key": self.key})
            self._known((rows[0][0], dict(rows[0][1])) if rows else (None, {}))
        assert self._step is not None
        return self._step

    def _known(self, step: Step) -> None:
        self._step = self._stored = step

    async def _write(self, state: str | None, data: dict[str, Any]) -> None:
        await self._read()
        # What the caller changes later is not written.
        self._step = (None, {}) if state is None and not data else (state, copied(data))
        if not self._deferred:
            await self.flush()

    async def flush(self) -> None:
        """Write the step, unless the row holds it already."""
        step = self._step
        if step is None or step == self._stored:
            return
        self._stored = step
        if step == (None, {}):
            await self.session.exec(delete(FsmRecord).where(col(FsmRecord.key) == self.key))
            return
        row = {"key": self.key, "state": step[0], "data": step[1]}
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
        return copied((await self._read())[1])

    async def set_data(self, data: dict[str, Any]) -> None:
        await self._write((await self._read())[0], data)

    async def update_data(
        self, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        state, current = await self._read()
        merged = {**current, **(data or {}), **kwargs}
        await self._write(state, merged)
        return copied(merged)

    async def clear(self) -> None:
        await self._write(None, {})


def flush_later(state: StoredState) -> None:
    """Write `state`'s step with those of the other turns of its session's transaction, by
    `flush_steps` (one statement for all of them, not one a turn), rather than at once."""
    pending: dict[str, StoredState] = state.session.info.setdefault(_PENDING, {})
    pending[state.key] = state


async def flush_steps(session: AsyncSession) -> None:
    """Write the steps left to `flush_later` in `session`: the conversations that ended in one
    DELETE, the others in one upsert. Whatever deletes conversations in the transaction (an
    erasure) calls it first, so that it finds them written, as if each turn had flushed."""
    pending: dict[str, StoredState] = session.info.pop(_PENDING, {})
    gone: list[str] = []
    rows: list[dict[str, Any]] = []
    for key, state in pending.items():
        step = state._step
        if step is None or step == state._stored:
            continue
        state._stored = step
        if step == (None, {}):
            gone.append(key)
        else:
            rows.append({"key": key, "state": step[0], "data": step[1]})
    if gone:
        await session.exec(delete(FsmRecord).where(col(FsmRecord.key).in_(gone)))
    await upsert_many(session, FsmRecord, rows, key="key", update_columns=("state", "data"))


async def read_steps(session: AsyncSession, states: Sequence[StoredState]) -> None:
    """Read the conversations of several people at once (one statement, not one each), before
    their turns in `session`'s transaction."""
    unread = {state.key: state for state in states if state._step is None}
    if not unread:
        return
    rows = await core_rows(session, _STEPS, {"keys": list(unread)})
    found = {key: (state, dict(data)) for key, state, data in rows}
    for key, state in unread.items():
        state._known(found.get(key, (None, {})))
