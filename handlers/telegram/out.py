"""The core's outputs rendered for Telegram (the Turn itself is built by
`handlers.telegram.conversation.turn_of`).

Every call goes through `bot` methods, so `handlers.telegram.replies` records it during the
handler and sends it after the commit, as for any other reply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram import Bot
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    User,
)

from domain.conversation.io import Ask, Options, Person
from domain.i18n import _
from domain.kinds.photo import picture
from handlers.telegram.i18n import language_from_telegram
from handlers.telegram.keyboards import menu_keyboard
from handlers.telegram.uploads import Upload

CHANNEL = "telegram"

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


def inline_keyboard(options: Options) -> InlineKeyboardMarkup | None:
    """Options as inline buttons: a key becomes callback data, a url a link button."""
    rows = [
        [
            InlineKeyboardButton(text=option.label, url=option.url)
            if option.url is not None
            else InlineKeyboardButton(text=option.label, callback_data=option.key)
            for option in row
        ]
        for row in options
        if row
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def location_keyboard() -> ReplyKeyboardMarkup:
    share = [[KeyboardButton(text=_("📍 Send my location"), request_location=True)]]
    return ReplyKeyboardMarkup(keyboard=share, resize_keyboard=True, one_time_keyboard=True)


def markup_of(options: Options, ask: Ask | None) -> Markup:
    """A Telegram message has one keyboard: a reply keyboard for a picker (location) or the
    member menu, its removal, otherwise the options inline."""
    if ask is Ask.LOCATION:
        return location_keyboard()
    if ask is Ask.MENU:
        return menu_keyboard()
    if ask is Ask.CLEAR:
        return ReplyKeyboardRemove()
    return inline_keyboard(options)


class TelegramOut:
    """`io.Out` for one chat; `edit` is the message whose button was pressed, `query` the press."""

    __slots__ = ("bot", "chat_id", "edit", "query")

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        edit: Message | None = None,
        query: CallbackQuery | None = None,
    ) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.edit = edit
        self.query = query

    async def say(self, text: str, options: Options = (), *, ask: Ask | None = None) -> None:
        if ask is Ask.LOCATION:  # the core asks; how is this channel's: the button below
            hint = _("Tap the button below to share where you are now.")
            text = f"{text}\n{hint}" if text else hint
        await self.bot.send_message(self.chat_id, text, reply_markup=markup_of(options, ask))

    async def replace(self, text: str, options: Options = ()) -> None:
        if self.edit is None:
            await self.say(text, options)
        else:
            await self.edit.edit_text(text, reply_markup=inline_keyboard(options))

    async def update_options(self, options: Options) -> None:
        if self.edit is not None:
            await self.edit.edit_reply_markup(reply_markup=inline_keyboard(options))

    async def notice(self, text: str = "", *, alert: bool = False) -> None:
        if self.query is not None:
            await self.query.answer(text or None, show_alert=alert)

    async def file(
        self, name: str, data: bytes, *, caption: str = "", image: bool = False
    ) -> None:
        upload = BufferedInputFile(data, filename=name)
        if image and picture(data):  # a GIF or WebP as a photo may be refused, or animated
            await self.bot.send_photo(self.chat_id, upload, caption=caption or None)
        else:
            await self.bot.send_document(self.chat_id, upload, caption=caption or None)

    async def file_later(
        self,
        maker: str,
        args: Mapping[str, Any],
        name: str,
        failed: str,
        *,
        caption: str = "",
    ) -> None:
        """An `Upload`: the reply sender makes it after the commit, in a process of its own."""
        upload = Upload(maker, args, filename=name, failed=failed)
        await self.bot.send_document(self.chat_id, upload, caption=caption or None)


def person_of(user: User) -> Person:
    return Person(CHANNEL, str(user.id), language_from_telegram(user.language_code))
