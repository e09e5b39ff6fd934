"""Keyboards and callback data shared by the routers; callback data is untrusted input."""

from __future__ import annotations

from typing import Any

from aiogram.filters.callback_data import CallbackData
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from pydantic import create_model

from domain.conversation.common import MENU
from domain.conversation.drafts import AnswerKey, StartCheckInKey, SummaryKey
from domain.conversation.keys import Key
from domain.conversation.manager_keys import (
    ListKey,
    NavKey,
    NudgeKey,
    OrgKey,
    ScheduleKey,
)


class ConsentCb(CallbackData, prefix="consent"):
    """Routes presses of `domain.conversation.enrolment.ConsentKey` (the same fields, so the
    same wire format); the core unpacks the key itself."""

    accept: bool
    code: str


class LanguageCb(CallbackData, prefix="lang"):
    """Routes presses of `domain.conversation.common.LanguageKey` (the same wire format)."""

    language: str


def twin(key: type[Key]) -> type[CallbackData]:
    """aiogram's `CallbackData` twin of a core key: the same prefix, fields and bounds, so its
    `filter()` lets a press reach a handler only when the data unpacks as the key's would."""
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in key.model_fields.items()}
    return create_model(
        key.__name__.removesuffix("Key") + "Cb",
        __base__=CallbackData,
        __module__=__name__,
        __cls_kwargs__={"prefix": key.prefix},
        **fields,
    )


# The check-in's buttons (domain.conversation.drafts).
AnswerCb = twin(AnswerKey)
SummaryCb = twin(SummaryKey)
StartCheckInCb = twin(StartCheckInKey)

# Managers' buttons: the core's keys (domain.conversation.manager_keys) make and read them; these
# twins route them. Data that does not unpack gets "this button is no longer valid"
# (handlers.telegram.gate).
NavCb = twin(NavKey)
ListCb = twin(ListKey)
NudgeCb = twin(NudgeKey)
OrgCb = twin(OrgKey)
ScheduleCb = twin(ScheduleKey)
MANAGER_CALLBACKS: tuple[type[CallbackData], ...] = (NavCb, ListCb, NudgeCb, OrgCb, ScheduleCb)


def menu_keyboard() -> ReplyKeyboardMarkup:
    """The persistent member menu under the input field (the core's `MENU`); a press sends
    the label as text, which the core reads back as its command."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(label)) for label, _command in row] for row in MENU],
        resize_keyboard=True,
        is_persistent=True,
    )
