"""A photo taken now (not forwarded).

Stored: the channel's reference to the photo (a Telegram ``file_id``), ``str``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from domain.conversation.drafts import Draft
from domain.conversation.io import Photo
from domain.i18n import _
from domain.kinds.base import Answered, AnswerError, Asking, ErrorTexts, Given, Kind, Lang

if TYPE_CHECKING:
    from domain.forms import Question

ATTACHED: Final = {"zh": "已附照片", "en": "photo attached"}


class PhotoKind(Kind):
    name = "photo"
    errors: ClassVar[ErrorTexts] = {
        "need_photo": lambda: _("Please send a photo (or tap Skip if you have none)."),
        "forwarded_photo": lambda: _("A forwarded photo cannot be used. Please take a new one."),
    }

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        hint = _("Send a photo taken now (not forwarded).")
        return Asking(f"{self.prompt(q, lang)}\n{hint}", self.skip_row(q, draft))

    def message(self, q: Question, given: Given, draft: Draft) -> Answered:
        if not isinstance(given, Photo):
            raise AnswerError("need_photo")
        if given.forwarded:
            raise AnswerError("forwarded_photo")
        return Answered(given.ref)

    def format(self, q: Question, value: object, lang: Lang) -> str:
        return ATTACHED[lang]
