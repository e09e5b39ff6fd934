"""Private chats on Telegram: every message and button press becomes a `Turn` and a neutral
input, and the core's one routing answers it (`domain.conversation.dispatch.converse`). Nothing
is routed here: a new command or button is the core's (CONTRIBUTING.md says where), and every
channel has it.

The middlewares have done the rest before: only a person's message or press in their own
private chat gets here (`PrivateChatsOnly`), in the batch's transaction (`DbSessionMiddleware`),
with its FSM state (aiogram's `FSMContext` over `handlers.telegram.fsm`), the `Visitor`
(`VisitorMiddleware`), its language (`LanguageMiddleware`) and its command menu
(`common.CommandMenu`); what the core says goes out after the commit
(`handlers.telegram.replies`)."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import aiohttp
from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommandScopeChat, CallbackQuery, Message, Update

from domain.conversation.dispatch import Services, converse
from domain.conversation.io import Command, Document, Input, Location, Photo, Press, Text
from domain.conversation.turn import Turn, Visitor
from domain.delivery import TELEGRAM
from domain.i18n import current as translator
from handlers.telegram.common import manager_commands
from handlers.telegram.context import note_checkin
from handlers.telegram.out import TelegramOut, person_of

router = Router(name="conversation")


@router.message()
async def on_message(message: Message, **data: Any) -> None:
    given = await input_of(message, data["bot"])
    await converse(turn_of(message, data), given, services_of(data))


@router.callback_query()
async def on_press(query: CallbackQuery, **data: Any) -> None:
    await converse(turn_of(query, data), Press(query.data or ""), services_of(data))


def turn_of(event: Message | CallbackQuery, data: dict[str, Any]) -> Turn:
    """The Turn of a message or a press: its person, what Daka knows of them, their state, and
    an `Out` answering in their chat (a press's `replace` edits the message pressed)."""
    bot: Bot = data["bot"]
    user = event.from_user
    assert user is not None  # PrivateChatsOnly lets only people's messages and presses in
    if isinstance(event, CallbackQuery):
        pressed = event.message if isinstance(event.message, Message) else None
        chat_id = pressed.chat.id if pressed is not None else user.id
        out = TelegramOut(bot, chat_id, edit=pressed, query=event)
    else:
        out = TelegramOut(bot, event.chat.id)
    visitor: Visitor | None = data.get("visitor")
    if visitor is None:
        visitor = Visitor(channel=TELEGRAM, external_id=str(user.id), account=None)
    update: Update | None = data.get("event_update")
    update_id = update.update_id if update is not None else None
    return Turn(
        person_of(user),
        visitor,
        data["repo"],
        data["clock"],
        data["state"],
        out,
        update_id,
        channels=data.get("channels", frozenset()),  # where its letters go: the deployment's
    )


def content_of(message: Message) -> Text | Location | Photo | Document:
    """What a message holds for the core. One it has no input for (a sticker, a voice note) is
    an empty `Text`: the question waiting asks again for what it needs."""
    if message.text is not None:
        return Text(message.text)
    if message.location is not None:
        spot = message.location
        return Location(
            spot.latitude,
            spot.longitude,
            accuracy=spot.horizontal_accuracy,
            live=spot.live_period is not None,
            forwarded=message.forward_origin is not None,
        )
    if message.photo:
        return Photo(message.photo[-1].file_id, forwarded=message.forward_origin is not None)
    if message.document is not None:
        document = message.document
        return Document(document.file_id, document.file_name or "", document.file_size)
    return Text("")


async def input_of(message: Message, bot: Bot) -> Input:
    """The message as the core's input: a command when its text, or the caption of what it
    carries, is one (as aiogram's `Command` filter reads it), with what it carries attached;
    otherwise its content."""
    content = content_of(message)
    said = message.text or message.caption
    command = await command_of(said, bot) if said else None
    if command is None:
        return content
    if message.text is not None and message.text.startswith("/"):
        return command
    return replace(command, attached=content)


async def command_of(said: str, bot: Bot) -> Command | None:
    """`/name args` or `/name@bot args`, read as aiogram's `Command` filter reads it: the first
    word, then the rest. A command to another bot keeps the mention in its name, so nothing
    of ours takes it (an unknown command, or text to the conversation under way)."""
    if not said.lstrip().startswith("/"):  # most messages: answers, chatter
        return None
    head, *rest = said.split(maxsplit=1)
    name, _at, mention = head[1:].partition("@")
    if mention:
        ours = (await bot.me()).username
        if ours and mention.lower() != ours.lower():
            name = head[1:]
    return Command(name, rest[0] if rest else "")


def services_of(data: dict[str, Any]) -> Services:
    """What the core needs from Telegram beyond the Turn."""
    bot: Bot = data["bot"]

    async def fetch(ref: str) -> bytes:
        buffer = io.BytesIO()
        try:
            await bot.download(ref, destination=buffer)
        except (TelegramAPIError, aiohttp.ClientError, TimeoutError) as error:
            raise LookupError(
                f"Telegram file {ref[:12]}… could not be fetched: {error}"
            ) from error
        return buffer.getvalue()

    async def granted(turn: Turn, role: str) -> None:
        """A manager's commands from now on (`common.CommandMenu` keeps them in step)."""
        await bot.set_my_commands(
            manager_commands(), scope=BotCommandScopeChat(chat_id=int(turn.person.external_id))
        )
        account = await turn.visitor.ensure_account(turn.repo, turn.clock.now())
        account.menu = f"manager:{translator().current_locale}"

    return Services(
        resolve=data["resolve"],
        fetch=fetch,
        wake=data.get("outbox_wake"),
        recorded=note_checkin,
        granted=granted,
    )
