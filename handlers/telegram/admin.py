"""Managers change their scope on Telegram: /excuse, /roster (the file downloaded here), and
/where shows where the scope checked in from. The behaviour is the core's
(domain.conversation.admin, lists), behind the managers' gate."""

from __future__ import annotations

import io as bytesio

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import Message

from domain.clock import Clock
from domain.conversation import admin, io, managers
from domain.conversation.turn import Visitor
from handlers.telegram.gate import ManagersConversation, managers_router
from handlers.telegram.out import message_turn
from storage.repo import Repo
from storage.scope import Scope

router = managers_router("admin")


class RosterUpload(ManagersConversation):
    waiting = State()  # "RosterUpload:waiting": admin.ROSTER_WAITING


@router.message(Command("where", "excuse", "roster"), StateFilter(None))
async def on_admin_command(
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


@router.message(StateFilter(RosterUpload.waiting), F.document)
async def on_roster_file(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    document = message.document
    assert document is not None

    async def download(file: io.Document) -> bytes:
        buffer = bytesio.BytesIO()
        await bot.download(file.ref, destination=buffer)
        return buffer.getvalue()

    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    sent = io.Document(document.file_id, document.file_name or "", document.file_size)
    await admin.on_roster_file(turn, scope, sent, download)


@router.message(StateFilter(RosterUpload.waiting))
async def on_roster_other(
    message: Message,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    turn = message_turn(message, state=state, repo=repo, clock=clock, visitor=visitor)
    await admin.on_roster_other(turn)
