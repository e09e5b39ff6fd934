"""The member menu's reply keyboard, and aiogram's `CallbackData` twins of the core's keys.

Nothing routes with the twins any more (the core routes a press by its key,
`domain.conversation.dispatch`); they are the wire format the Telegram routers read before,
kept so that tests show every button already in a chat still unpacks as the core's key, and so
that tests and the fuzzer can make presses of each kind, forged ones included."""

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
    PhotoKey,
    ScheduleKey,
)
from domain.conversation.privacy import WithdrawKey


class ConsentCb(CallbackData, prefix="consent"):
    """`domain.conversation.enrolment.ConsentKey` as the router read it (the same wire
    format)."""

    accept: bool
    code: str


class LanguageCb(CallbackData, prefix="lang"):
    """`domain.conversation.common.LanguageKey` as the router read it (the same wire format)."""

    language: str


def twin(key: type[Key]) -> type[CallbackData]:
    """aiogram's `CallbackData` twin of a core key: the same prefix, fields and bounds."""
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

# A member's withdrawal of consent (domain.conversation.privacy).
WithdrawCb = twin(WithdrawKey)

# Managers' buttons (domain.conversation.manager_keys): data that does not unpack gets "this
# button is no longer valid".
NavCb = twin(NavKey)
ListCb = twin(ListKey)
NudgeCb = twin(NudgeKey)
OrgCb = twin(OrgKey)
ScheduleCb = twin(ScheduleKey)
PhotoCb = twin(PhotoKey)
MANAGER_CALLBACKS: tuple[type[CallbackData], ...] = (
    NavCb,
    ListCb,
    NudgeCb,
    OrgCb,
    ScheduleCb,
    PhotoCb,
)


def menu_keyboard() -> ReplyKeyboardMarkup:
    """The persistent member menu under the input field (the core's `MENU`); a press sends
    the label as text, which the core reads back as its command."""
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=str(label)) for label, _command in row] for row in MENU],
        resize_keyboard=True,
        is_persistent=True,
    )
