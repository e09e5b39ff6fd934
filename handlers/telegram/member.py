"""A member's own data on Telegram: /today, /history (also the menu's buttons) and /mydata,
routed to `domain.conversation.member`; /withdraw and its confirmation, routed to
`domain.conversation.privacy`."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from domain.clock import Clock
from domain.conversation import member, privacy
from domain.conversation.turn import Visitor
from handlers.telegram.keyboards import HISTORY_BUTTON, TODAY_BUTTON, WithdrawCb
from handlers.telegram.out import message_turn, press_turn
from storage.repo import Repo

router = Router(name="member")


@router.message(Command("today"), StateFilter(None))
@router.message(F.text == TODAY_BUTTON, StateFilter(None))
async def on_today(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await member.on_today(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.message(Command("history"), StateFilter(None))
@router.message(F.text == HISTORY_BUTTON, StateFilter(None))
async def on_history(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await member.on_history(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.message(Command("mydata"), StateFilter(None))
async def on_mydata(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await member.on_mydata(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.message(Command("withdraw"), StateFilter(None))
async def on_withdraw(
    message: Message, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await privacy.on_withdraw(
        message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    )


@router.callback_query(WithdrawCb.filter())
async def on_withdraw_press(
    query: CallbackQuery, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await privacy.on_withdraw_press(
        press_turn(query, state=state, repo=repo, clock=clock, visitor=visitor),
        query.data or "",
    )
