"""Yes or no, with an optional detail typed after "yes" (the follow-up).

Stored: ``{"yes": bool, "detail": str | None}`` (the draft keeps "follow_up" while the detail
is being asked)."""

from __future__ import annotations

import html
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast

from domain.conversation.drafts import Draft
from domain.conversation.io import Option, Text
from domain.i18n import _
from domain.kinds.base import (
    AbnormalRule,
    Answered,
    AnswerError,
    Asking,
    ErrorTexts,
    FormError,
    Given,
    Kind,
    Lang,
    Outcome,
    Staying,
)
from domain.kinds.checks import positive_int, texts
from domain.kinds.text import DEFAULT_TEXT_MAX_LENGTH, parse_text

if TYPE_CHECKING:
    from domain.forms import Question

YES: Final = "__yes"
NO: Final = "__no"
WORDS: Final[Mapping[str, Mapping[Lang, str]]] = {
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
}


def parse_follow_up(q: Question, text: str) -> str:
    """Accept the detail typed after answering "yes" to a yesno question."""
    return parse_text(q, text, max_length=q.follow_up_max_length)


def yesno_answer(yes: bool, detail: str | None = None) -> dict[str, object]:
    """Build the stored yesno value; a detail only belongs to a "yes"."""
    return {"yes": yes, "detail": detail if yes else None}


def as_yesno(value: object) -> tuple[bool, str | None]:
    if isinstance(value, Mapping) and isinstance(value.get("yes"), bool):
        detail = value.get("detail")
        if detail is None or isinstance(detail, str):
            return value["yes"], detail
    raise TypeError(f"expected {{'yes': bool, 'detail': str | None}}, got {value!r}")


class YesNoKind(Kind):
    name = "yesno"
    keys = frozenset({"follow_up", "follow_up_max_length", "follow_up_retain_days"})
    abnormal_keys = frozenset({"yes"})
    errors: ClassVar[ErrorTexts] = {"need_details": lambda: _("Please type the details as text.")}

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        follow_up = texts(raw["follow_up"], where, "follow_up") if "follow_up" in raw else None
        keep = None
        if "follow_up_retain_days" in raw:
            if follow_up is None:
                raise FormError(f"{where}: 'follow_up_retain_days' needs a 'follow_up'")
            keep = positive_int(raw, "follow_up_retain_days", where, 0)
        return {
            "follow_up": follow_up,
            "follow_up_max_length": positive_int(
                raw, "follow_up_max_length", where, DEFAULT_TEXT_MAX_LENGTH
            ),
            "follow_up_retain_days": keep,
        }

    def retention_parts(self, q: Question) -> Mapping[str, int]:
        return {} if q.follow_up_retain_days is None else {"detail": q.follow_up_retain_days}

    def without_part(self, q: Question, value: object, part: str) -> object:
        if part == "detail" and isinstance(value, Mapping):
            return {**value, "detail": None}
        return value

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        skip = self.skip_row(q, draft)
        if draft.data.get("follow_up"):
            return Asking(html.escape(q.follow_up_prompt(lang) or ""), skip)
        yes_no = [Option(_("Yes"), draft.key(q.id, YES)), Option(_("No"), draft.key(q.id, NO))]
        return Asking(self.prompt(q, lang), [yes_no, *skip])

    def press(self, q: Question, value: str, draft: Draft) -> Outcome:
        if value == YES and q.follow_up is not None:
            draft.data["follow_up"] = True
            return Staying.QUESTION
        if value in (YES, NO):
            return Answered(yesno_answer(value == YES))
        raise AnswerError("unknown_option")

    def message(self, q: Question, given: Given, draft: Draft) -> Answered:
        if not draft.data.get("follow_up"):
            raise AnswerError("use_buttons")
        if not isinstance(given, Text) or not given.text:
            raise AnswerError("need_details")
        detail = parse_follow_up(q, given.text)
        draft.data["follow_up"] = False
        return Answered(yesno_answer(True, detail))

    def format(self, q: Question, value: object, lang: Lang) -> str:
        yes, detail = as_yesno(value)
        word = WORDS["yes" if yes else "no"][lang]
        if not detail:
            return word
        return f"{word}（{detail}）" if lang == "zh" else f"{word} ({detail})"

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        if type(value) is not dict:
            return None
        answer = cast(dict[str, object], value)
        yes, detail = answer.get("yes"), answer.get("detail")
        if (
            type(yes) is bool
            and (detail is None or type(detail) is str)
            and len(answer) == ("yes" in answer) + ("detail" in answer)
        ):
            return (q.id, yes, detail)
        return None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        return rule.yes and as_yesno(value)[0]
