"""Keyboards and callback data shared by the routers; callback data is untrusted input."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData, CallbackQueryFilter
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup

from domain.conversation.keys import Key
from domain.conversation.manager_keys import (
    MANAGER_KEYS,
    ListKey,
    NavKey,
    NudgeKey,
    OrgKey,
    ScheduleKey,
)
from domain.i18n import _, __


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


# Managers' buttons: the core's keys (domain.conversation.manager_keys), under the names the
# routers and tests know; a key that does not unpack gets "this button is no longer valid"
# (handlers.telegram.gate).
NavCb = NavKey
ListCb = ListKey
NudgeCb = NudgeKey
OrgCb = OrgKey
ScheduleCb = ScheduleKey
MANAGER_CALLBACKS: tuple[type[Key], ...] = MANAGER_KEYS


def pressed(key: type[Key]) -> CallbackQueryFilter:
    """aiogram's button filter for a core key: it matches when the data unpacks, and hands the
    key to the handler as `callback_data`, as `CallbackData.filter()` does."""
    return CallbackQueryFilter(callback_data=key)  # type: ignore[arg-type]


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
