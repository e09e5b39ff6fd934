"""Free text within a length.

Stored: ``str``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from domain.conversation.drafts import Draft
from domain.conversation.io import Text
from domain.i18n import _
from domain.kinds.base import Answered, AnswerError, ErrorTexts, Given, Kind
from domain.kinds.checks import positive_int

if TYPE_CHECKING:
    from domain.forms import Question

DEFAULT_TEXT_MAX_LENGTH: Final = 200


def parse_text(q: Question, text: str, *, max_length: int | None = None) -> str:
    """Accept free text within the length limit (the question's unless `max_length` is given)."""
    if max_length is None:
        max_length = q.max_length if q.max_length is not None else DEFAULT_TEXT_MAX_LENGTH
    value = text.strip()
    if not value:
        raise AnswerError("empty")
    if len(value) > max_length:
        raise AnswerError("too_long", max_length=max_length, length=len(value))
    return value


class TextKind(Kind):
    name = "text"
    keys = frozenset({"max_length"})
    errors: ClassVar[ErrorTexts] = {"need_text": lambda: _("Please type your answer.")}

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {"max_length": positive_int(raw, "max_length", where, DEFAULT_TEXT_MAX_LENGTH)}

    def message(self, q: Question, given: Given, draft: Draft) -> Answered:
        if not isinstance(given, Text) or not given.text:
            raise AnswerError("need_text")
        return Answered(parse_text(q, given.text))
