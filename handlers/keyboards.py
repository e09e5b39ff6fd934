"""Keyboards and callback data shared by the routers; callback data is untrusted input."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __


class ConsentCb(CallbackData, prefix="consent"):
    accept: bool
    code: str


class AnswerCb(CallbackData, prefix="ans"):
    """A press on a question's button; `draft` ties it to one draft so stale presses are seen."""

    draft: str
    q: str
    value: str


class SummaryCb(CallbackData, prefix="sum"):
    draft: str
    action: str
    q: str = ""


class LanguageCb(CallbackData, prefix="lang"):
    language: str


class StartCheckInCb(CallbackData, prefix="go"):
    pass


CHECKIN_BUTTON = __("✅ Check in")
TODAY_BUTTON = __("📋 Today")
HISTORY_BUTTON = __("🗓 History")


def menu_keyboard() -> ReplyKeyboardMarkup:
    """The persistent member menu under the input field."""
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=_("✅ Check in"))],
            [KeyboardButton(text=_("📋 Today")), KeyboardButton(text=_("🗓 History"))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )
