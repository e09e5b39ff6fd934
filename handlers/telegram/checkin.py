"""The daily check-in on Telegram: routes a member's messages and presses by conversation state
to the check-in dialogue (`domain.conversation.checkin`), each translated into a neutral
input; what the dialogue says comes back through `TelegramOut`."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, Update

from domain.clock import Clock
from domain.conversation import checkin, io
from domain.conversation.common import CHECKIN_BUTTON
from domain.conversation.drafts import ANSWERING, SUMMARY
from domain.conversation.turn import Turn, Visitor
from handlers.telegram.context import note_checkin
from handlers.telegram.keyboards import AnswerCb, StartCheckInCb, SummaryCb
from handlers.telegram.out import message_turn, press_turn
from storage.models import TELEGRAM
from storage.repo import Repo

router = Router(name="checkin")

Resolve = checkin.Resolve


class CheckInForm(StatesGroup):
    answering = State()
    summary = State()


assert (CheckInForm.answering.state, CheckInForm.summary.state) == (ANSWERING, SUMMARY)

# By prefix: the core unpacks the key (once) and answers one that does not unpack.
START = F.data == StartCheckInCb().pack()
ANSWER = F.data.startswith(AnswerCb.__prefix__ + ":")
SUMMARY_PRESS = F.data.startswith(SummaryCb.__prefix__ + ":")


def given_of(message: Message) -> io.Input:
    """A message as the dialogue's input. One it has no input for (a sticker, a voice note) is
    an empty `Text`: the question asks again for what it needs."""
    text = message.text
    if text is not None:
        if text.startswith("/"):
            name, _space, args = text[1:].partition(" ")
            return io.Command(name, args)
        return io.Text(text)
    if message.location is not None:
        spot = message.location
        return io.Location(
            spot.latitude,
            spot.longitude,
            accuracy=spot.horizontal_accuracy,
            live=spot.live_period is not None,
            forwarded=message.forward_origin is not None,
        )
    if message.photo:
        return io.Photo(message.photo[-1].file_id, forwarded=message.forward_origin is not None)
    if message.document is not None:
        document = message.document
        return io.Document(document.file_id, document.file_name or "", document.file_size)
    return io.Text("")


def turn_of(
    message: Message, bot: Bot, state: FSMContext, repo: Repo, clock: Clock, v: Visitor | None
) -> Turn:
    assert message.from_user is not None  # PrivateChatsOnly lets only people's messages in
    visitor = v or Visitor(channel=TELEGRAM, external_id=str(message.from_user.id), account=None)
    return message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor, bot=bot)


def press_of(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    v: Visitor | None,
    update_id: int | None = None,
) -> Turn:
    visitor = v or Visitor(channel=TELEGRAM, external_id=str(query.from_user.id), account=None)
    return press_turn(
        query, state=state, repo=repo, clock=clock, visitor=visitor, bot=bot, update_id=update_id
    )


@router.message(Command("checkin"), StateFilter(None))
@router.message(F.text == CHECKIN_BUTTON, StateFilter(None))
async def on_checkin(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = turn_of(message, bot, state, repo, clock, visitor)
    await checkin.on_start(turn, io.Command("checkin"), resolve=resolve)


@router.callback_query(START, StateFilter(None))
async def on_checkin_button(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = press_of(query, bot, state, repo, clock, visitor)
    await checkin.on_start(turn, io.Press(query.data or ""), resolve=resolve)


@router.message(StateFilter(CheckInForm.answering))
async def on_answer_message(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = turn_of(message, bot, state, repo, clock, visitor)
    await checkin.on_answer(turn, given_of(message), resolve=resolve)


@router.callback_query(ANSWER, StateFilter(CheckInForm.answering))
async def on_answer_button(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = press_of(query, bot, state, repo, clock, visitor)
    await checkin.on_answer(turn, io.Press(query.data or ""), resolve=resolve)


@router.callback_query(SUMMARY_PRESS, StateFilter(CheckInForm.summary))
async def on_summary_button(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    event_update: Update,
    visitor: Visitor | None = None,
    outbox_wake: Callable[[], None] | None = None,
) -> None:
    turn = press_of(query, bot, state, repo, clock, visitor, event_update.update_id)
    await checkin.on_summary(
        turn,
        io.Press(query.data or ""),
        resolve=resolve,
        wake=outbox_wake,
        recorded=note_checkin,
    )


@router.message(StateFilter(CheckInForm.summary))
async def on_summary_message(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = turn_of(message, bot, state, repo, clock, visitor)
    await checkin.on_summary(turn, given_of(message), resolve=resolve)
