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
from domain.conversation.turn import Visitor
from handlers.telegram.gate import managers_router
from handlers.telegram.keyboards import ListCb, NavCb, NudgeCb
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo
from storage.scope import Scope

__all__ = ["ListCb", "NavCb", "NudgeCb"]  # the routing twins of the core's keys

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


@router.callback_query(NavCb.filter())
@router.callback_query(ListCb.filter())
@router.callback_query(NudgeCb.filter())
async def on_view_pressed(
    query: CallbackQuery,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
    channels: frozenset[str] = frozenset(),
) -> None:
    """A summary's unit, page or list button, a list's page or nudge button (a nudge reaches
    the member on the deployment's `channels`)."""
    turn = press_turn(
        query, state=state, repo=repo, clock=clock, visitor=visitor, channels=channels
    )
    await managers.on_press(turn, scope, io.Press(query.data or ""))
