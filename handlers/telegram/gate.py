"""The managers' gate: every handler of a managers' router runs with the caller's resolved
`Scope` or not at all. A router made by `managers_router` cannot forget it; a new view declares
`scope: Scope` and asks the scope about every id it is given. What the scope is, and what someone
without one is told, the core decides (domain.conversation.managers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import StatesGroup
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from domain.clock import Clock
from domain.conversation import managers
from domain.conversation.io import MemoryState, Press, State
from domain.conversation.manager_keys import stale
from domain.conversation.turn import Turn, Visitor
from domain.delivery import TELEGRAM
from handlers.telegram.keyboards import MANAGER_CALLBACKS, OrgCb
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

router = Router(name="gate")  # the choice of organisation, and managers' buttons gone bad


class ManagersConversation(StatesGroup):
    """The base of every conversation of the managers' routers (a roster upload); its states
    are the core's `managers.MANAGERS_STATES`, the only ones the gate clears when it refuses."""


def turn_of(event: TelegramObject, data: dict[str, Any]) -> Turn | None:
    """The Turn of a message or press that reached a managers' handler (None: neither)."""
    user: User | None = data.get("event_from_user")
    visitor: Visitor | None = data.get("visitor")
    if visitor is None and user is not None:
        visitor = Visitor(channel=TELEGRAM, external_id=str(user.id), account=None)
    if visitor is None:
        return None
    state: State = data.get("state") or MemoryState()  # none: nothing of theirs to clear
    repo: Repo = data["repo"]
    clock: Clock = data["clock"]
    if isinstance(event, CallbackQuery):
        return press_turn(event, state=state, repo=repo, clock=clock, visitor=visitor)
    if isinstance(event, Message):
        return message_turn(event, state=state, repo=repo, clock=clock, visitor=visitor)
    return None


def press_turn_of(
    query: CallbackQuery,
    state: FSMContext | None,
    repo: Repo,
    clock: Clock,
    visitor: Visitor | None,
) -> Turn:
    """The Turn of a press handled before there is a scope (the gate's own router)."""
    return press_turn(
        query,
        state=state or MemoryState(),
        repo=repo,
        clock=clock,
        visitor=visitor
        or Visitor(channel=TELEGRAM, external_id=str(query.from_user.id), account=None),
    )


class ManagersGate(BaseMiddleware):
    """Inner middleware of the managers' routers: it runs once a handler's filters matched, and
    calls the handler only with a resolved scope. Members get the refusal (a button: "no longer
    valid"); managers of several organisations who have not chosen one get the choice."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        visitor: Visitor | None = data.get("visitor")
        scope = managers.scope_of(visitor) if visitor is not None else None
        if scope is not None:
            data["scope"] = scope
            return await handler(event, data)
        turn = turn_of(event, data)
        if turn is not None:
            await managers.without_scope(turn, pressed=isinstance(event, CallbackQuery))
        return None


def managers_router(name: str) -> Router:
    """A router whose every message and button handler is behind `ManagersGate`."""
    gated = Router(name=name)
    gate = ManagersGate()
    gated.message.middleware(gate)
    gated.callback_query.middleware(gate)
    return gated


def is_gated(candidate: Router) -> bool:
    return any(isinstance(m, ManagersGate) for m in candidate.message.middleware) and any(
        isinstance(m, ManagersGate) for m in candidate.callback_query.middleware
    )


@router.callback_query(OrgCb.filter())
async def on_org_chosen(
    query: CallbackQuery,
    repo: Repo,
    clock: Clock,
    state: FSMContext | None = None,
    visitor: Visitor | None = None,
) -> None:
    """Choose the organisation to work in: before there is a scope, so not behind the gate."""
    turn = press_turn_of(query, state, repo, clock, visitor)
    await managers.on_press(turn, None, Press(query.data or ""))


@router.callback_query(F.data.startswith(tuple(f"{cb.__prefix__}:" for cb in MANAGER_CALLBACKS)))
async def on_bad_manager_button(
    query: CallbackQuery,
    repo: Repo,
    clock: Clock,
    state: FSMContext | None = None,
    visitor: Visitor | None = None,
) -> None:
    """A managers' button whose data does not unpack: out of bounds, or not of this bot."""
    await stale(press_turn_of(query, state, repo, clock, visitor))
