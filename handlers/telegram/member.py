"""A member's own data on Telegram: /today, /history (also the menu's buttons) and /mydata,
routed to `domain.conversation.member`."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from domain.clock import Clock
from domain.conversation import member
from domain.conversation.common import HISTORY_BUTTON, TODAY_BUTTON
from domain.conversation.turn import Visitor
from handlers.telegram.out import message_turn
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
