"""Keyboards and callback data shared by the routers; callback data is untrusted input."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiogram.filters.callback_data import CallbackData
from aiogram.types import KeyboardButton, ReplyKeyboardMarkup
from pydantic import Field, create_model

from domain.conversation.drafts import AnswerKey, StartCheckInKey, SummaryKey
from domain.conversation.keys import Key
from domain.i18n import _, __
from storage.scope import MAX_ROW_ID


class ConsentCb(CallbackData, prefix="consent"):
    accept: bool
    code: str


class LanguageCb(CallbackData, prefix="lang"):
    language: str


def factory_of(key: type[Key]) -> type[CallbackData]:
    """aiogram's `CallbackData` of a key the core owns: the same prefix and fields, so the same
    packed strings. The routers filter on its prefix and the fuzz test forges it; the core
    unpacks and re-authorises the key itself."""
    fields: dict[str, Any] = {name: (f.annotation, f) for name, f in key.model_fields.items()}
    return create_model(
        key.__name__.removesuffix("Key") + "Cb",
        __base__=CallbackData,
        __cls_kwargs__={"prefix": key.prefix},
        __module__=__name__,
        **fields,
    )


# The check-in's buttons (domain.conversation.drafts).
AnswerCb = factory_of(AnswerKey)
SummaryCb = factory_of(SummaryKey)
StartCheckInCb = factory_of(StartCheckInKey)

# Managers' buttons. Their fields are bounded where they are unpacked: a value no row can have
# (beyond the database's integers, negative, a page past any list, a day too long to be one)
# fails to unpack, and the press gets "this button is no longer valid" (handlers.telegram.gate).
RowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]  # 0: the top of the caller's scope
Page = Annotated[int, Field(ge=0, le=100_000)]
Day = Annotated[str, Field(min_length=10, max_length=10)]


class NavCb(CallbackData, prefix="nav"):
    """Drill-down in /summary: a unit of the scope (0: the scope's top) on a day."""

    unit: RowId
    day: Day
    page: Page = 0


class ListCb(CallbackData, prefix="lst"):
    kind: Literal["missing", "abnormal"]
    unit: RowId
    day: Day
    page: Page = 0


class NudgeCb(CallbackData, prefix="nud"):
    member: RowId
    day: Day


class OrgCb(CallbackData, prefix="org"):
    """Work in this organisation (0: show the choice again), for managers of several."""

    org: RowId


class ScheduleCb(CallbackData, prefix="sch"):
    """/schedule of one of several granted units: show it, or give it the schedule typed."""

    unit: RowId
    put: bool = False


MANAGER_CALLBACKS: tuple[type[CallbackData], ...] = (NavCb, ListCb, NudgeCb, OrgCb, ScheduleCb)

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
