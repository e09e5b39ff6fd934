"""The Telegram courier: how the outbox's neutral letters become Telegram messages.

The text goes as HTML (Daka's light markup is a subset of what Telegram reads), the options as
an inline keyboard: an option's key becomes the button's callback data (a press comes back to
the handlers as that key), a link a URL button. What Telegram answers is told back to the
sender in the neutral outcomes, by the one Bot API error policy (`handlers.telegram.errors`).
Its pace is Telegram's: about 30 messages a second per bot (`SEND_RATE`, 25 by default, keeps
a margin) and one a second per chat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aiogram import Bot
from aiogram.enums import ParseMode
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from domain.delivery import SENT, TELEGRAM, Letter, Outcome, Pace, Refused
from handlers.telegram.errors import API_ERRORS, failure_of
from handlers.telegram.replies import results_unused

TELEGRAM_PACE = Pace(rate_per_second=25.0, per_recipient_interval=1.0)


class TelegramCourier:
    """Delivers letters addressed on the "telegram" channel (the address is the chat id)."""

    channel = TELEGRAM

    def __init__(self, bot: Bot, pace: Pace = TELEGRAM_PACE) -> None:
        self.bot = bot
        self.pace = pace

    async def deliver(self, letter: Letter) -> Outcome:
        try:
            chat_id = int(letter.address)
            markup = keyboard(letter.options)
        except ValueError as exc:  # stored wrong: Telegram would refuse it as well
            return Refused(f"not a letter Telegram can take: {exc}")
        token = results_unused.set(True)  # the echo is not read: no `Message` is made of it
        try:
            await self.bot.send_message(
                chat_id, letter.text, parse_mode=ParseMode.HTML, reply_markup=markup
            )
        except API_ERRORS as exc:
            return failure_of(exc)
        finally:
            results_unused.reset(token)
        return SENT


def keyboard(options: Sequence[Sequence[Mapping[str, str]]] | None) -> InlineKeyboardMarkup | None:
    """Options as an inline keyboard, row for row; None for none."""
    if not options:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[button(o) for o in row] for row in options])


def button(option: Mapping[str, str]) -> InlineKeyboardButton:
    label = option.get("label")
    if not isinstance(label, str):
        raise ValueError(f"an option without a label: {option!r}")
    if "key" in option:
        return InlineKeyboardButton(text=label, callback_data=option["key"])
    if "url" in option:
        return InlineKeyboardButton(text=label, url=option["url"])
    raise ValueError(f"an option with neither a key nor a link: {option!r}")
