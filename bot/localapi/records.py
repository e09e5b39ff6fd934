"""Plain data records the local Bot API keeps: calls, sent messages, uploads, callback
answers and webhook deliveries, as tests (and the demo's web chat) read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

JSON = dict[str, Any]

# Fields of an InlineKeyboardButton that make it "do" something (Telegram rejects inline
# buttons that have none of them).
INLINE_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)

_MEDIA_KINDS = ("document", "video", "audio", "voice", "animation", "sticker", "video_note")


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file the bot uploaded in a multipart request (``params["document"]`` etc.)."""

    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class Call:
    """One Bot API request as the server saw it.

    ``at`` is ``time.monotonic()`` when the request arrived; ``status`` the HTTP status
    answered (200 = ok). ``result`` is the ``result`` returned on success, ``description``
    the error description otherwise.
    """

    method: str
    params: JSON
    chat_id: int | None
    at: float
    status: int
    result: Any = None
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class WebhookDelivery(NamedTuple):
    """One attempt to POST an update to the webhook.

    ``status`` is the HTTP status the target answered, or None when no HTTP answer came
    (connection refused, timeout, a target the fake refuses to reach); the reason is in
    :attr:`LocalBotAPI.webhook_last_error_message`.
    """

    update_id: int
    target: str
    status: int | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class CallbackAnswer:
    """An ``answerCallbackQuery`` call."""

    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    chat_id: int | None
    params: JSON
    at: float


def _button_text(button: Any) -> str:
    if isinstance(button, dict):
        return str(button.get("text", ""))
    return str(button)


def find_button(rows: list[list[Any]], text: str) -> Any:
    """Find a button by its visible text: exact match first, then a unique substring."""
    flat = [b for row in rows for b in row]
    for button in flat:
        if _button_text(button) == text:
            return button
    partial = [b for b in flat if text in _button_text(b)]
    if len(partial) == 1:
        return partial[0]
    shown = [[_button_text(b) for b in row] for row in rows]
    if partial:
        raise AssertionError(f"button text {text!r} is ambiguous among {shown}")
    raise AssertionError(f"no button {text!r} among {shown}")


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the bot showed a chat: one message as sent or as it looks after an edit.

    ``text`` is the visible text (``text`` or ``caption``, HTML already parsed into plain
    text as Telegram does; the source is in :attr:`html`). ``reply_markup`` is the markup
    the bot passed (inline *or* reply keyboard); ``raw`` is the Message dict returned to
    the bot (and put into callback queries). ``method`` is the API method that produced
    this version (``sendMessage``, ``editMessageText``, ...).
    """

    chat_id: int
    message_id: int
    text: str  # "" for a message without text or caption (a photo, a location)
    reply_markup: JSON | None
    method: str
    params: JSON
    raw: JSON
    at: float
    edited: bool = False
    deleted: bool = False

    # -- keyboards ---------------------------------------------------------------------
    @property
    def inline_keyboard(self) -> list[list[JSON]]:
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or []
        return [list(row) for row in rows]

    @property
    def reply_keyboard(self) -> list[list[JSON]]:
        """Reply-keyboard buttons normalised to dicts (plain string buttons -> {"text"})."""
        markup = self.reply_markup or {}
        rows = markup.get("keyboard") or []
        return [[b if isinstance(b, dict) else {"text": str(b)} for b in row] for row in rows]

    @property
    def buttons(self) -> list[list[str]]:
        """Rows of visible button texts (inline keyboard, else reply keyboard)."""
        rows: list[list[Any]] = self.inline_keyboard or self.reply_keyboard
        return [[_button_text(b) for b in row] for row in rows]

    def button(self, text: str) -> JSON:
        """The inline (or reply) button whose text equals / uniquely contains ``text``."""
        rows: list[list[Any]] = self.inline_keyboard or self.reply_keyboard
        found = find_button(rows, text)
        return found if isinstance(found, dict) else {"text": str(found)}

    def callback_data(self, text: str) -> str:
        """callback_data of the inline button with visible text ``text`` (exact/substring)."""
        button = find_button(self.inline_keyboard, text)
        data = button.get("callback_data")
        if data is None:
            raise AssertionError(f"inline button {text!r} has no callback_data: {button}")
        return str(data)

    @property
    def has_request_location_button(self) -> bool:
        return any(b.get("request_location") for row in self.reply_keyboard for b in row)

    @property
    def removes_keyboard(self) -> bool:
        return bool((self.reply_markup or {}).get("remove_keyboard"))

    # -- content -----------------------------------------------------------------------
    @property
    def html(self) -> str | None:
        """The text/caption exactly as the bot sent it (before HTML parsing)."""
        for key in ("text", "caption"):
            value = self.params.get(key)
            if value is not None:
                return str(value)
        return None

    @property
    def is_edit(self) -> bool:
        return self.method.startswith("edit")

    @property
    def document(self) -> JSON | None:
        doc = self.raw.get("document")
        return doc if isinstance(doc, dict) else None

    @property
    def photo(self) -> list[JSON] | None:
        photo = self.raw.get("photo")
        return photo if isinstance(photo, list) else None

    @property
    def location(self) -> JSON | None:
        loc = self.raw.get("location")
        return loc if isinstance(loc, dict) else None

    @property
    def file_name(self) -> str | None:
        doc = self.document
        return None if doc is None else doc.get("file_name")

    @property
    def file_id(self) -> str | None:
        """file_id of the attached media (largest photo size for photos)."""
        photo = self.photo
        if photo:
            return str(photo[-1]["file_id"])
        for kind in _MEDIA_KINDS:
            media = self.raw.get(kind)
            if isinstance(media, dict):
                return str(media["file_id"])
        return None

    def summary(self) -> str:
        kind = "text"
        for key in ("photo", *_MEDIA_KINDS, "location"):
            if key in self.raw:
                kind = key
                break
        parts = [f"{self.method} #{self.message_id}"]
        if kind != "text":
            parts.append(f"[{kind}]")
        if self.text is not None:
            parts.append(repr(self.text))
        if self.buttons:
            parts.append(f"buttons={self.buttons}")
        if self.removes_keyboard:
            parts.append("(remove keyboard)")
        if self.deleted:
            parts.append("(deleted)")
        return " ".join(parts)
