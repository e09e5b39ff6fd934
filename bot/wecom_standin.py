"""STAND-IN, to be deleted when `domain.conversation.dispatch` and
`storage.conversation_state` land on main: the core's routing (`converse(turn, given,
services)`, with the same `Services`) and a person's conversation state on a channel other than
Telegram (`StoredState(session, channel=..., external_id=...)`, in the `fsmrecord` table under
`{channel}:{external_id}`), with the signatures of those modules, so that `bot.wecom` switches
to them by changing its imports. The routing is the Telegram bot's, for what WeCom's members and
managers say; the state is written into the turn's session, so it commits with the turn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.conversation import admin, checkin, common, enrolment, managers, member
from domain.conversation.drafts import ANSWERING, SUMMARY, AnswerKey, StartCheckInKey, SummaryKey
from domain.conversation.enrolment import CONSENT, MEMBER_ID, NAME, ConsentKey
from domain.conversation.io import Command, Document, Input, Press, Text
from domain.conversation.manager_keys import MANAGER_KEYS
from domain.conversation.turn import Turn
from storage.models import FsmRecord
from storage.repo import upsert_many

Fetch = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What answering needs beyond the Turn (as `domain.conversation.dispatch.Services`)."""

    resolve: checkin.Resolve
    fetch: Fetch
    wake: Callable[[], None] | None = None
    recorded: Callable[[], None] | None = None
    granted: Callable[[Turn, str], Awaitable[None]] | None = None


MEMBER_COMMANDS = {
    "help": common.on_help,
    "language": common.on_language,
    "today": member.on_today,
    "history": member.on_history,
    "mydata": member.on_mydata,
}


async def converse(turn: Turn, given: Input, services: Services) -> None:
    """Answer one input, routed by the person's conversation state."""
    state = await turn.state.get_state()
    if isinstance(given, Press):
        await _press(turn, given, state, services)
    elif isinstance(given, Command) and given.name == "cancel":
        await common.on_cancel(turn)
    elif isinstance(given, Command) and given.name == "start" and given.args:
        await enrolment.on_invite(turn, given.args)
    elif isinstance(given, Command) and state is None:
        await _command(turn, given, services)
    elif state == CONSENT:
        await enrolment.on_consent_pending(turn)
    elif state in (MEMBER_ID, NAME):
        if not isinstance(given, Text) or not given.text or isinstance(given, Command):
            await enrolment.on_enrol_other(turn)
        elif state == MEMBER_ID:
            await enrolment.on_member_id(turn, given)
        else:
            await enrolment.on_name(turn, given)
    elif state == ANSWERING:
        await checkin.on_answer(turn, given, resolve=services.resolve)
    elif state == SUMMARY:
        await checkin.on_summary(
            turn, given, resolve=services.resolve, wake=services.wake, recorded=services.recorded
        )
    elif state == admin.ROSTER_WAITING:
        scope = managers.scope_of(turn.visitor)
        if scope is not None and isinstance(given, Document):

            async def fetch(document: Document) -> bytes:
                return await services.fetch(document.ref)

            await admin.on_roster_file(turn, scope, given, fetch)
        else:
            await admin.on_roster_other(turn)
    elif isinstance(given, Command):
        await common.on_unknown_command(turn)
    else:
        await common.on_anything_else(turn)


async def _command(turn: Turn, command: Command, services: Services) -> None:
    if command.name == "start":
        await enrolment.on_start(turn)
    elif command.name == "checkin":
        await checkin.on_start(turn, command, resolve=services.resolve)
    elif command.name in MEMBER_COMMANDS:
        await MEMBER_COMMANDS[command.name](turn)
    elif not await managers.on_command(turn, managers.scope_of(turn.visitor), command):
        await common.on_unknown_command(turn)


async def _press(turn: Turn, press: Press, state: str | None, services: Services) -> None:
    key = press.key
    if ConsentKey.matches(key) and state == CONSENT:
        role = await enrolment.on_consent(turn, key)
        if role is not None and services.granted is not None:
            await services.granted(turn, role)
    elif common.LanguageKey.matches(key):
        await common.on_language_chosen(turn, key)
    elif StartCheckInKey.matches(key) and state is None:
        await checkin.on_start(turn, press, resolve=services.resolve)
    elif AnswerKey.matches(key) and state == ANSWERING:
        await checkin.on_answer(turn, press, resolve=services.resolve)
    elif SummaryKey.matches(key) and state == SUMMARY:
        await checkin.on_summary(
            turn, press, resolve=services.resolve, wake=services.wake, recorded=services.recorded
        )
    elif any(cls.matches(key) for cls in MANAGER_KEYS):
        await managers.on_press(turn, managers.scope_of(turn.visitor), press)
    else:
        await common.on_stale_press(turn)


class StoredState:
    """A person's conversation on a channel, in `fsmrecord` under `{channel}:{external_id}`,
    read once and written into the turn's session at each change."""

    def __init__(self, session: AsyncSession, *, channel: str, external_id: str) -> None:
        self.session = session
        self.key = f"{channel}:{external_id}"
        self._step: tuple[str | None, dict[str, Any]] | None = None

    async def _read(self) -> tuple[str | None, dict[str, Any]]:
        if self._step is None:
            row = await self.session.get(FsmRecord, self.key)
            self._step = (row.state, dict(row.data)) if row is not None else (None, {})
        return self._step

    async def _write(self, state: str | None, data: dict[str, Any]) -> None:
        self._step = (state, deepcopy(data))
        if state is None and not data:
            await self.session.exec(delete(FsmRecord).where(col(FsmRecord.key) == self.key))
            return
        row = {"key": self.key, "state": state, "data": self._step[1]}
        await upsert_many(
            self.session, FsmRecord, [row], key="key", update_columns=("state", "data")
        )

    async def get_state(self) -> str | None:
        return (await self._read())[0]

    async def set_state(self, state: Any = None) -> None:
        await self._write(getattr(state, "state", state), (await self._read())[1])

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
