"""/trend [days] on Telegram: a chart of the caller's scope over the last days (the core's,
domain.conversation.exports), behind the managers' gate."""

from __future__ import annotations

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from domain.clock import Clock
from domain.conversation import io, managers
from domain.conversation.turn import Visitor
from handlers.telegram.gate import managers_router
from handlers.telegram.out import message_turn
from storage.repo import Repo
from storage.scope import Scope

router = managers_router("trend")


@router.message(Command("trend"), StateFilter(None))
async def on_trend_command(
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
