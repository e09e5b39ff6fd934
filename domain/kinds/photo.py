"""A photo taken now (not forwarded).

Stored: a neutral reference to the photo's bytes kept by Daka (``media:<id>``, the `photo`
table), ``str``; answers from before the table hold the channel's own reference (a Telegram
``file_id``). The bytes are kept, on every channel, because WeCom serves a member's image for
3 days only, and so that a manager on any channel can be shown a photo sent on another."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Final

from domain.conversation.drafts import Draft
from domain.conversation.io import Photo
from domain.i18n import _
from domain.kinds.base import Answered, AnswerError, Asking, ErrorTexts, Given, Kind, Lang

if TYPE_CHECKING:
    from domain.forms import Question

ATTACHED: Final = {"zh": "已附照片", "en": "photo attached"}
REF_PREFIX: Final = "media:"
MAX_PHOTO_BYTES: Final = 5 * 1024 * 1024  # well within WeCom's 10 MB and Telegram's 10 MB

# What a photo's first bytes say it is: (magic, content type, file extension).
_MAGIC: Final = (
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"GIF87a", "image/gif", "gif"),
    (b"GIF89a", "image/gif", "gif"),
)


def media_ref(photo_id: int) -> str:
    """The stored answer of a photo kept by Daka."""
    return f"{REF_PREFIX}{photo_id}"


def media_id(value: object) -> int | None:
    """The id of a photo kept by Daka, from a stored answer (None: no photo, or an old
    answer holding only the channel's reference)."""
    if not isinstance(value, str) or not value.startswith(REF_PREFIX):
        return None
    digits = value.removeprefix(REF_PREFIX)
    return int(digits) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None


def picture(data: bytes) -> bool:
    """Whether a photo can go as a picture on every channel: JPEG or PNG by its first bytes
    (WeCom's media/upload takes no other image); anything else goes as a file."""
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))


def image_type(data: bytes) -> tuple[str, str]:
    """The content type and file extension of an image, by its first bytes (JPEG when
    unknown: what both channels send photos as)."""
    for magic, content_type, extension in _MAGIC:
        if data.startswith(magic):
            return content_type, extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", "webp"
    return "image/jpeg", "jpg"


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
