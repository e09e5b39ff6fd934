"""/schedule on Telegram: the schedule of the caller's scope, shown or changed, and the choice
of unit for a manager of several (the core's, domain.conversation.schedule), behind the
managers' gate."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from domain.clock import Clock
from domain.conversation import io, managers
from domain.conversation.turn import Visitor
from handlers.telegram.gate import managers_router
from handlers.telegram.keyboards import ScheduleCb
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo
from storage.scope import Scope

router = managers_router("manage")


@router.message(Command("schedule"), StateFilter(None))
async def on_schedule_command(
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


@router.callback_query(ScheduleCb.filter())
async def on_schedule_pressed(
    query: CallbackQuery,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    """The unit whose schedule to show, or to give the schedule typed."""
    turn = press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor)
    await managers.on_press(turn, scope, io.Press(query.data or ""))
