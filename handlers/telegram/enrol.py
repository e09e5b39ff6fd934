"""Enrolment on Telegram: the invite link (`/start CODE`) and the conversation that follows,
routed to `domain.conversation.enrolment`; the command menu an invite's role brings."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BotCommandScopeChat, CallbackQuery, Message

from domain.clock import Clock
from domain.conversation import enrolment
from domain.conversation.io import Text
from domain.conversation.turn import Visitor
from domain.i18n import Translator
from handlers.telegram.common import manager_commands
from handlers.telegram.keyboards import ConsentCb
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo

router = Router(name="enrol")


class Enrol(StatesGroup):
    """Named as `domain.conversation.enrolment`'s states ("Enrol:consent", ...)."""

    consent = State()
    member_id = State()
    name = State()


@router.message(CommandStart(deep_link=True))
async def on_start_with_code(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
) -> None:
    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    await enrolment.on_invite(turn, command.args or "")


@router.message(CommandStart(deep_link=False), StateFilter(None))
async def on_plain_start(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await enrolment.on_start(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.callback_query(ConsentCb.filter(), StateFilter(Enrol.consent))
async def on_consent(
    query: CallbackQuery,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    bot: Bot,
    i18n: Translator,
) -> None:
    turn = press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor, bot=bot)
    role = await enrolment.on_consent(turn, query.data or "")
    if role is not None:
        # A manager's commands from now on (handlers.telegram.common.CommandMenu keeps them).
        await bot.set_my_commands(
            manager_commands(), scope=BotCommandScopeChat(chat_id=query.from_user.id)
        )
        account = await visitor.ensure_account(repo, clock.now())
        account.menu = f"manager:{i18n.current_locale}"


@router.message(StateFilter(Enrol.member_id), F.text)
async def on_member_id(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    await enrolment.on_member_id(turn, Text(message.text or ""))


@router.message(StateFilter(Enrol.name), F.text)
async def on_name(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    await enrolment.on_name(turn, Text(message.text or ""))


@router.message(StateFilter(Enrol.member_id, Enrol.name))
async def on_enrol_other(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    """Stickers, photos: say what is expected and ask the same question."""
    await enrolment.on_enrol_other(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.message(StateFilter(Enrol.consent))
async def on_consent_pending(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await enrolment.on_consent_pending(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )
