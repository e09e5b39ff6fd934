"""Managers' views on Telegram: /summary with drill-down, /missing and /abnormal lists with a
nudge button, /member, /export. The behaviour is the core's (domain.conversation.summary,
lists, exports); here, behind the managers' gate (handlers.telegram.gate), each command or
button becomes a Turn and the caller's `Scope`."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from domain.clock import Clock
from domain.conversation import io, managers
from domain.conversation.lists import PAGE, on_list_page, on_nudge
from domain.conversation.manager_keys import ListKey, NavKey, NudgeKey
from domain.conversation.summary import on_navigate
from domain.conversation.turn import Visitor
from handlers.telegram.gate import managers_router
from handlers.telegram.keyboards import ListCb, NavCb, NudgeCb, pressed
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo
from storage.scope import Scope

__all__ = ["PAGE", "ListCb", "NavCb", "NudgeCb"]

router = managers_router("views")

VIEWS = ("summary", "missing", "abnormal", "member", "export")


@router.message(Command(*VIEWS), StateFilter(None))
async def on_view(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    await managers.on_command(turn, scope, io.Command(command.command, command.args or ""))


@router.callback_query(pressed(NavKey))
async def on_nav(
    query: CallbackQuery,
    callback_data: NavKey,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    turn = press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor)
    await on_navigate(turn, scope, callback_data)


@router.callback_query(pressed(ListKey))
async def on_list(
    query: CallbackQuery,
    callback_data: ListKey,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    turn = press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor)
    await on_list_page(turn, scope, callback_data)


@router.callback_query(pressed(NudgeKey))
async def on_nudge_pressed(
    query: CallbackQuery,
    callback_data: NudgeKey,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    turn = press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor)
    await on_nudge(turn, scope, callback_data)
