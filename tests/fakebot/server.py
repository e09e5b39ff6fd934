"""A fake Telegram Bot API server (real HTTP, aiohttp) for conversation tests and benchmarks.

Point the real aiogram client at it::

    async with FakeBotAPI() as server:
        api = TelegramAPIServer.from_base(server.url)
        bot = Bot(server.token, session=AiohttpSession(api=api))
        user = server.user(1001)
        user.send("/start")
        reply = await server.next_reply(1001)

Everything is event driven (futures, no polling sleeps) and O(1) per request.

Webhooks work as on Telegram: once the bot calls ``setWebhook``, getUpdates answers 409 and
every pushed update is POSTed as JSON to the webhook, with the ``X-Telegram-Bot-Api-Secret-Token``
header when a secret was set. A test can put a load balancer in front of several replicas::

    server.webhook_targets = [f"{replica_a}/telegram", f"{replica_b}/telegram"]
    await bot.set_webhook("https://daka.example.org/telegram", secret_token="s3cret")
    user.send("/start")
    await server.wait_webhook_idle()
    assert [d.status for d in server.webhook_deliveries] == [200]

- ``webhook_targets``: full URLs taking the deliveries in turn (round robin per attempt);
  empty means the setWebhook URL. Only loopback hosts are ever contacted: another host
  fails like an unreachable one and its updates wait, so set the targets before the
  replicas call setWebhook with their public URL (setting them retries at once).
- Up to ``max_connections`` deliveries are in flight, but one chat's updates go one at a
  time and in order: the next only after the previous was answered with a 2xx.
- An update leaves the queue only on a 2xx. Any other answer, a refused connection or a
  timeout (``webhook_timeout``) is kept in ``webhook_last_error_message`` (and in
  getWebhookInfo) and the update is retried after ``webhook_retry_delay`` seconds, doubled
  per failure up to ``webhook_retry_max_delay``. setWebhook also retries at once.
- A 2xx whose body names a ``method`` (JSON, or the form aiogram sends with
  ``handle_in_background=False``) is executed as a call of that method, recorded in
  ``calls``, before the chat's next update goes out.
- ``webhook_deliveries`` lists every attempt; ``wait_webhook_idle()`` waits until no update
  is pending or in flight. With aiogram's default ``handle_in_background=True`` a 2xx only
  means "received": wait for the bot's replies, not for idleness.

``hold(method, after=N)`` carries out and records the calls of ``method`` after the first N but
keeps their answers back until ``release()``: ``Hold.held`` is what was on the wire when a test
killed the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import json
import logging
import mimetypes
import re
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import aiohttp
from aiohttp import web
from yarl import URL

from .models import (
    INLINE_ACTIONS,
    JSON,
    Call,
    CallbackAnswer,
    SentMessage,
    UploadedFile,
    WebhookDelivery,
)
from .tghtml import EntityParseError, parse_html, utf16_len

if TYPE_CHECKING:
    from .users import FakeUser

log = logging.getLogger("tests.fakebot")

__all__ = ["ApiError", "FailureRule", "FakeBotAPI", "Hold"]

# Parameters that are always strings (never JSON-decoded / coerced to numbers).
_STRING_KEYS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_query_id",
        "shipping_query_id",
        "pre_checkout_query_id",
        "inline_message_id",
        "business_connection_id",
        "message_effect_id",
        "file_id",
        "custom_emoji_id",
        "url",
        "data",
        "parse_mode",
        "caption_parse_mode",
        "action",
        "secret_token",
        "ip_address",
        "language_code",
        "title",
        "description",
        "short_description",
        "name",
        "first_name",
        "last_name",
        "username",
        "emoji",
        "address",
        "foursquare_id",
        "foursquare_type",
        "google_place_id",
        "google_place_type",
        "phone_number",
        "vcard",
        "question",
        "explanation",
        "payload",
        "currency",
        "provider_token",
        "start_parameter",
        "custom_title",
        "photo",
        "document",
        "video",
        "audio",
        "voice",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "certificate",
        "game_short_name",
        "next_offset",
        "switch_pm_text",
        "switch_pm_parameter",
        "sticker_set_name",
        "invite_link",
    }
)
_JSONISH = re.compile(r"^(?:[\[{]|-?\d|true$|false$|null$)")
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

_MESSAGE_SENDING = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvideo",
        "sendaudio",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendvideonote",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendmediagroup",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
    }
)
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Telegram does not deliver these unless explicitly listed in allowed_updates.
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_TRUE_METHODS = (
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setMyDefaultAdministratorRights",
    "pinChatMessage",
    "unpinChatMessage",
    "unpinAllChatMessages",
    "setMessageReaction",
)
_MEDIA_DEFAULT_NAMES = {
    "photo": ("photo.jpg", "image/jpeg"),
    "document": ("document", "application/octet-stream"),
    "video": ("video.mp4", "video/mp4"),
    "audio": ("audio.mp3", "audio/mpeg"),
    "voice": ("voice.ogg", "audio/ogg"),
    "animation": ("animation.mp4", "video/mp4"),
    "sticker": ("sticker.webp", "image/webp"),
    "video_note": ("video_note.mp4", "video/mp4"),
}
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


class ApiError(Exception):
    """Raised inside method handlers; becomes ``{"ok": false, ...}`` with that status."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass(slots=True)
class FailureRule:
    """An injected failure; see :meth:`FakeBotAPI.fail`. ``times=None`` means forever."""

    method: str  # lower-case method name or "*"
    status: int
    times: int | None
    chat_id: int | None
    retry_after: int | None
    description: str
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.exhausted:
            return False
        if self.method not in ("*", method.lower()):
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError:
        params = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.status, self.description, params)


@dataclass(eq=False)
class Hold:
    """Answers kept back; see :meth:`FakeBotAPI.hold`. ``held`` lists the calls carried out
    (Telegram has done them) whose answers have not left yet: what is on the wire."""

    method: str  # lower-case method name or "*"
    after: int
    seen: int = 0
    held: list[Call] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str) -> bool:
        return self.method in ("*", method.lower())

    def release(self) -> None:
        """Let every held answer go, and answer later calls at once."""
        self.released.set()


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_name: str | None
    mime_type: str | None

    def as_file(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


class _ChatState:
    __slots__ = (
        "answer_cursor",
        "answers",
        "calls",
        "chat_id",
        "cursor",
        "deleted_user_messages",
        "log",
        "messages",
        "next_message_id",
        "outputs",
        "reply_keyboard",
        "user_messages",
        "waiters",
    )

    def __init__(self, chat_id: int) -> None:
        self.chat_id = chat_id
        self.next_message_id = 1
        self.messages: dict[int, SentMessage] = {}
        self.user_messages: dict[int, JSON] = {}
        self.deleted_user_messages: set[int] = set()
        self.outputs: list[SentMessage] = []
        self.cursor = 0
        self.calls: list[Call] = []
        self.answers: list[CallbackAnswer] = []
        self.answer_cursor = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.log: deque[tuple[str, Any]] = deque(maxlen=40)
        self.reply_keyboard: JSON | None = None

    def wake(self) -> None:
        if self.waiters:
            for fut in self.waiters:
                if not fut.done():
                    fut.set_result(None)
            self.waiters.clear()


class _Lane:
    """One chat's updates waiting for the webhook: delivered one at a time, in order."""

    __slots__ = ("busy", "failures", "key", "queued", "retry", "updates")

    def __init__(self, key: int | str) -> None:
        self.key = key
        self.updates: deque[JSON] = deque()
        self.busy = False  # its first update is being delivered
        self.queued = False  # waiting in FakeBotAPI._ready_lanes for a free connection
        self.failures = 0  # consecutive failed deliveries (sets the backoff)
        self.retry: asyncio.TimerHandle | None = None


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _is_loopback(url: str) -> bool:
    host = URL(url).host
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _as_int(value: Any, default: int = 0) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _bad(f"invalid integer value {value!r}") from None


def _as_float(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad(f"{what} is invalid") from None


def _coerce(key: str, value: str) -> Any:
    """Turn a form/query string back into the JSON value aiogram serialised."""
    if key in _STRING_KEYS or not value or not _JSONISH.match(value):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _update_type(update: JSON) -> str:
    return next((k for k in update if k != "update_id"), "")


def _update_chat_id(update: JSON) -> int | None:
    body = update.get(_update_type(update))
    if not isinstance(body, dict):
        return None
    chat = body.get("chat")
    if chat is None and isinstance(body.get("message"), dict):
        chat = body["message"].get("chat")
    if isinstance(chat, dict) and isinstance(chat.get("id"), int):
        return int(chat["id"])
    sender = body.get("from")
    if isinstance(sender, dict) and isinstance(sender.get("id"), int):
        return int(sender["id"])
    return None


def _describe_update(update: JSON) -> str:
    kind = _update_type(update)
    body = update.get(kind)
    if not isinstance(body, dict):
        return f"{kind}"
    if kind == "callback_query":
        return f"press data={body.get('data')!r}"
    for key in ("text", "caption"):
        if key in body:
            return f"{kind} {body[key]!r}"
    for key in ("location", "photo", "document", "sticker", "contact", "video", "voice"):
        if key in body:
            extra = " (forwarded)" if "forward_origin" in body else ""
            detail = body[key] if key == "location" else ""
            return f"{kind} [{key}] {detail}{extra}".rstrip()
    return kind


class FakeBotAPI:
    """Fake Telegram Bot API server. See the module docstring."""

    def __init__(
        self,
        token: str = "42:TEST",
        bot_id: int = 42,
        bot_username: str = "daka_test_bot",
        *,
        bot_first_name: str = "Daka Test",
        now: Callable[[], float] = time.time,
        require_known_chats: bool = False,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_user: JSON = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        #: epoch-seconds clock used for message ``date`` fields (override freely)
        self.now: Callable[[], float] = now
        #: monotonic clock used for rate limits and ``Call.at``
        self.monotonic: Callable[[], float] = time.monotonic
        #: answer 400 "chat not found" for chats that never wrote to the bot
        self.require_known_chats = require_known_chats

        self.calls: list[Call] = []
        self.callback_answers: list[CallbackAnswer] = []
        self.updates: list[JSON] = []
        self.dropped_updates: list[JSON] = []
        self.unknown_methods: Counter[str] = Counter()
        self.internal_errors: list[str] = []
        self.count_429 = 0
        self.confirmed_offset = 0
        self.menu_buttons: dict[int | None, JSON] = {}

        #: the last setWebhook ("" = no webhook: updates wait for getUpdates)
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_drop_pending_updates = False
        #: seconds before the first retry of a failed delivery; doubled per failure up to the max
        self.webhook_retry_delay = 0.2
        self.webhook_retry_max_delay = 2.0
        #: seconds a delivery may take before it fails with "Read timeout expired"
        self.webhook_timeout = 10.0
        #: every delivery attempt, in the order the answers came
        self.webhook_deliveries: list[WebhookDelivery] = []
        #: the most recent failed delivery (kept after later successes, as on Telegram)
        self.webhook_last_error_date: int | None = None
        self.webhook_last_error_message: str | None = None

        self._counts: Counter[str] = Counter()
        self._ok_counts: Counter[str] = Counter()
        self._chats: dict[int, _ChatState] = {}
        self._known_chats: dict[int, JSON] = {}
        self._users: dict[int, FakeUser] = {}
        self._queue: deque[JSON] = deque()
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._poll_waiter: asyncio.Future[str] | None = None
        self._generic_waiters: list[asyncio.Future[None]] = []
        self._answer_waiters: list[asyncio.Future[None]] = []
        self._answer_cursor = 0
        self._callback_chats: dict[str, int | None] = {}
        self._failures: list[FailureRule] = []
        self._holds: list[Hold] = []
        self._blocked: set[int] = set()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._limit_global: int | None = None
        self._limit_chat: int | None = None
        self._limit_retry_after = 1
        self._limit_count_edits = False
        self._window_global: deque[float] = deque()
        self._window_chat: dict[int, deque[float]] = {}
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        self._closing = False
        self._webhook_targets: tuple[str, ...] = ()
        self._webhook_turn = 0
        self._lanes: dict[int | str, _Lane] = {}
        self._ready_lanes: deque[_Lane] = deque()
        self._lane_updates = 0
        self._in_flight = 0
        self._webhook_wakeup = asyncio.Event()
        self._webhook_task: asyncio.Task[None] | None = None
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self._webhook_http: aiohttp.ClientSession | None = None

        handlers: list[tuple[str, Callable[[JSON], Awaitable[Any]]]] = [
            ("getMe", self._m_get_me),
            ("getUpdates", self._m_get_updates),
            ("setWebhook", self._m_set_webhook),
            ("deleteWebhook", self._m_delete_webhook),
            ("getWebhookInfo", self._m_get_webhook_info),
            ("close", self._m_true),
            ("logOut", self._m_true),
            ("sendMessage", self._m_send_message),
            ("editMessageText", self._m_edit_message_text),
            ("editMessageCaption", self._m_edit_message_caption),
            ("editMessageReplyMarkup", self._m_edit_message_reply_markup),
            ("deleteMessage", self._m_delete_message),
            ("answerCallbackQuery", self._m_answer_callback_query),
            ("setMyCommands", self._m_set_my_commands),
            ("deleteMyCommands", self._m_delete_my_commands),
            ("getMyCommands", self._m_get_my_commands),
            ("setChatMenuButton", self._m_set_chat_menu_button),
            ("getChatMenuButton", self._m_get_chat_menu_button),
            ("sendChatAction", self._m_send_chat_action),
            ("getFile", self._m_get_file),
            ("sendLocation", self._m_send_location),
        ]
        for kind in _MEDIA_DEFAULT_NAMES:
            name = "send" + "".join(p.capitalize() for p in kind.split("_"))
            handlers.append((name, self._media_handler(name, kind)))
        handlers.extend((name, self._m_true) for name in _TRUE_METHODS)
        self._methods: dict[str, tuple[str, Callable[[JSON], Awaitable[Any]]]] = {
            name.lower(): (name, fn) for name, fn in handlers
        }

    # ===================================================================== lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Start serving on ``host:port`` (0 = a free port). Can be restarted after stop()."""
        if self._runner is not None:
            raise RuntimeError("FakeBotAPI is already running")
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._handle_file)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._host, self._port = str(address[0]), int(address[1])
        self._webhook_wakeup = asyncio.Event()
        for lane in self._lanes.values():
            self._schedule_lane(lane)
        self._webhook_task = asyncio.create_task(self._run_webhook(), name="fakebot-webhook")
        self._webhook_task.add_done_callback(self._webhook_task_done)
        return self

    async def stop(self) -> None:
        """Stop serving (wakes a pending long poll first so shutdown is instant).

        Webhook deliveries in flight are abandoned; their updates stay pending.
        """
        self._closing = True
        for hold in self._holds:
            hold.release()
        self._wake_poller("closing")
        await self._stop_webhook()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._runner is not None

    # ===================================================================== users/updates
    def user(
        self,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "zh-hans",
        username: str | None = None,
        *,
        last_name: str | None = None,
    ) -> FakeUser:
        """The simulated user ``user_id``.

        Created on the first call; later calls return the same object unchanged (change
        its profile with ``user.update(first_name=...)``).
        """
        from .users import FakeUser

        existing = self._users.get(user_id)
        if existing is None:
            existing = FakeUser(self, user_id, first_name, language_code, username, last_name)
            self._users[user_id] = existing
            self._known_chats[user_id] = existing.chat_dict
        return existing

    def register_chat(self, chat: JSON) -> None:
        """Remember a Chat object (``{"id", "type", ...}``) used in bot messages' ``chat``."""
        self._known_chats[int(chat["id"])] = dict(chat)

    @property
    def users(self) -> dict[int, FakeUser]:
        return self._users

    def push_update(self, update: JSON) -> int:
        """Enqueue an update (its update_id is assigned here) and wake the long poll."""
        update_id = self._next_update_id
        self._next_update_id += 1
        full: JSON = {"update_id": update_id}
        full.update((k, v) for k, v in update.items() if k != "update_id")
        self.updates.append(full)
        kind = _update_type(full)
        body = full.get(kind)
        chat_id = _update_chat_id(full)
        if isinstance(body, dict):
            if kind == "callback_query" and "id" in body:
                self._callback_chats[str(body["id"])] = chat_id
            chat = body.get("chat")
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                self._known_chats.setdefault(chat["id"], chat)
                if kind == "message" and isinstance(body.get("message_id"), int):
                    self._chat(chat["id"]).user_messages[body["message_id"]] = body
        if chat_id is not None:
            self._chat(chat_id).log.append(("in", full))
        if not self._is_allowed(kind):
            self.dropped_updates.append(full)
        elif self.webhook_url:
            self._enqueue_for_webhook(full)
        else:
            self._queue.append(full)
            self._wake_poller("update")
        self._notify()
        return update_id

    def pending_updates(self) -> int:
        """Updates not yet confirmed by getUpdates' offset or by a 2xx from the webhook."""
        return len(self._queue) + self._lane_updates

    @property
    def last_update_id(self) -> int:
        return self._next_update_id - 1

    @property
    def polling(self) -> bool:
        """True while a getUpdates long poll is parked waiting for updates."""
        return self._poll_waiter is not None and not self._poll_waiter.done()

    def next_message_id(self, chat_id: int) -> int:
        """Allocate a message id in ``chat_id`` (shared by user and bot messages)."""
        chat = self._chat(chat_id)
        mid = chat.next_message_id
        chat.next_message_id += 1
        return mid

    # ===================================================================== inspection
    def count(self, method: str | None = None, *, ok_only: bool = False) -> int:
        """Number of calls of ``method`` (case-insensitive; None = all methods)."""
        counts = self._ok_counts if ok_only else self._counts
        if method is None:
            return sum(counts.values())
        return counts[self._canonical(method)]

    def calls_for(self, chat_id: int) -> list[Call]:
        chat = self._chats.get(chat_id)
        return list(chat.calls) if chat else []

    def calls_of(self, method: str) -> list[Call]:
        name = self._canonical(method)
        return [c for c in self.calls if c.method == name]

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """Current state of every message the bot sent to ``chat_id`` (edits applied)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages.values() if include_deleted or not m.deleted]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        chat = self._chats.get(chat_id)
        found = chat.messages.get(message_id) if chat else None
        if found is None:
            raise AssertionError(f"bot message {message_id} not found in chat {chat_id}")
        return found

    def last_message(self, chat_id: int) -> SentMessage:
        shown = self.messages(chat_id)
        if not shown:
            raise AssertionError(f"the bot sent nothing to chat {chat_id}")
        return max(shown, key=lambda m: m.message_id)

    def outputs(self, chat_id: int) -> list[SentMessage]:
        """Every output event (sends and edits, as snapshots) for ``chat_id``, in order."""
        chat = self._chats.get(chat_id)
        return list(chat.outputs) if chat else []

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard currently shown in the chat (None if removed / never sent)."""
        chat = self._chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    def file_bytes(self, file_id: str) -> bytes:
        """Content of a file known to the server (uploaded by the bot or sent by a user)."""
        stored = self._files.get(file_id)
        if stored is None:
            raise AssertionError(f"unknown file_id {file_id!r}")
        return stored.data

    def register_file(
        self,
        data: bytes,
        *,
        kind: str = "document",
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> JSON:
        """Store ``data`` as a Telegram file; returns {file_id, file_unique_id, ...}."""
        seq = next(self._file_seq)
        ext = ""
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            ext = mimetypes.guess_extension(mime_type) or ""
        stored = _StoredFile(
            file_id=f"{kind[:3].upper()}ACAgIAAxkBAAI{seq:06d}",
            file_unique_id=f"AgAD{seq:06d}",
            file_path=f"{kind}s/file_{seq}{ext}",
            data=data,
            file_name=file_name,
            mime_type=mime_type,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(data),
        }

    def transcript(self, chat_id: int) -> str:
        """Recent conversation in ``chat_id`` (for assertion messages)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return f"(no activity in chat {chat_id})"
        lines: list[str] = []
        for kind, item in chat.log:
            if kind == "in":
                lines.append(f"  user -> {_describe_update(item)}")
            elif kind == "out":
                lines.append(f"  bot  <- {item.summary()}")
            elif kind == "answer":
                lines.append(f"  bot  <- answerCallbackQuery text={item.text!r}")
            elif kind == "delete":
                lines.append(f"  bot  <- deleteMessage #{item}")
            else:
                lines.append(f"  bot  x  {item.method} -> {item.status} {item.description}")
        read = chat.cursor
        lines.append(
            f"  ({read}/{len(chat.outputs)} outputs read; {self.pending_updates()} updates "
            f"pending, confirmed offset {self.confirmed_offset}, "
            f"last update_id {self.last_update_id})"
        )
        if self.webhook_url:
            lines.append(f"  ({self._webhook_state()})")
        return "\n".join(lines)

    # ===================================================================== waiting
    async def next_reply(self, chat_id: int, timeout: float = 5.0) -> SentMessage:  # noqa: ASYNC109
        """The next unread bot output (send or edit snapshot) in ``chat_id``."""
        chat = self._chat(chat_id)
        if chat.cursor >= len(chat.outputs):
            await self._wait_chat(
                chat, lambda: chat.cursor < len(chat.outputs), timeout, "a reply"
            )
        msg = chat.outputs[chat.cursor]
        chat.cursor += 1
        return msg

    def drain(self, chat_id: int) -> list[SentMessage]:
        """Mark every output in ``chat_id`` as read and return the unread ones."""
        chat = self._chat(chat_id)
        unread = chat.outputs[chat.cursor :]
        chat.cursor = len(chat.outputs)
        return unread

    async def expect_no_reply(self, chat_id: int, within: float = 0.3) -> None:
        """Assert the bot sends/edits nothing more in ``chat_id`` for ``within`` seconds."""
        chat = self._chat(chat_id)
        with contextlib.suppress(AssertionError):
            await self._wait_chat(chat, lambda: chat.cursor < len(chat.outputs), within, "")
        if chat.cursor < len(chat.outputs):
            unexpected = chat.outputs[chat.cursor]
            raise AssertionError(
                f"unexpected bot output in chat {chat_id}: {unexpected.summary()}\n"
                + self.transcript(chat_id)
            )

    async def next_callback_answer(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        chat_id: int | None = None,
    ) -> CallbackAnswer:
        """The next unread answerCallbackQuery (globally, or for one chat's presses)."""
        if chat_id is not None:
            chat = self._chat(chat_id)
            if chat.answer_cursor >= len(chat.answers):
                await self._wait_chat(
                    chat,
                    lambda: chat.answer_cursor < len(chat.answers),
                    timeout,
                    "answerCallbackQuery",
                )
            answer = chat.answers[chat.answer_cursor]
            chat.answer_cursor += 1
            return answer
        deadline = self._loop_time() + timeout
        while self._answer_cursor >= len(self.callback_answers):
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                raise AssertionError(
                    f"no answerCallbackQuery within {timeout}s "
                    f"({len(self.callback_answers)} answers so far)"
                )
            await self._park(self._answer_waiters, remaining)
        answer = self.callback_answers[self._answer_cursor]
        self._answer_cursor += 1
        return answer

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        message: str = "",
    ) -> None:
        """Wait until ``predicate()`` is true; re-checked after every call/update/event."""
        deadline = self._loop_time() + timeout
        while not predicate():
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                raise AssertionError(
                    f"condition not met within {timeout}s{': ' + message if message else ''}"
                )
            await self._park(self._generic_waiters, remaining)

    async def wait_for_call(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        after: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Call:
        """First call of ``method`` (optionally to ``chat_id``) at index >= ``after``."""
        name = self._canonical(method)
        source = self.calls if chat_id is None else self._chat(chat_id).calls
        index = after

        def scan() -> bool:
            nonlocal index
            while index < len(source):
                if source[index].method == name:
                    return True
                index += 1
            return False

        await self.wait_for(scan, timeout, f"{name} call (chat {chat_id})")
        return source[index]

    # ===================================================================== webhook
    @property
    def webhook_targets(self) -> tuple[str, ...]:
        """Full URLs that take webhook deliveries in turn (a load balancer); () = setWebhook's."""
        return self._webhook_targets

    @webhook_targets.setter
    def webhook_targets(self, targets: Iterable[str]) -> None:
        if isinstance(targets, str):
            raise TypeError("webhook_targets takes a list of URLs, not one string")
        urls = tuple(targets)
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a webhook target must be an http(s) URL, not {url!r}")
        self._webhook_targets = urls
        self._webhook_turn = 0
        self._retry_lanes_now()

    @property
    def allowed_updates(self) -> list[str] | None:
        """Update types the bot asked for (getUpdates or setWebhook); None = the default set."""
        return None if self._allowed_updates is None else sorted(self._allowed_updates)

    @property
    def webhook_in_flight(self) -> int:
        """Webhook deliveries sent and not answered yet."""
        return self._in_flight

    @property
    def webhook_idle(self) -> bool:
        """No update waits for delivery and none is in flight."""
        return self.pending_updates() == 0 and self._in_flight == 0

    async def wait_webhook_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every pushed update was answered 2xx by the webhook (and its reply run)."""
        try:
            await self.wait_for(lambda: self.webhook_idle, timeout)
        except AssertionError:
            raise AssertionError(
                f"webhook not idle within {timeout}s: {self._webhook_state()}"
            ) from None

    # ===================================================================== failures/limits
    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int | None = 1,
        chat_id: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> FailureRule:
        """Make the next ``times`` matching calls (None = all) answer with an error.

        ``method`` is case-insensitive, ``"*"`` matches any method. For 429 ``retry_after``
        defaults to 1 and is put in ``parameters`` as Telegram does.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = _DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
            description = description.format(retry_after=retry_after)
        rule = FailureRule(
            method=method.lower(),
            status=status,
            times=times,
            chat_id=chat_id,
            retry_after=retry_after,
            description=description,
        )
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        self._failures.clear()

    def hold(self, method: str, *, after: int = 0) -> Hold:
        """Carry out and record the calls of ``method`` (``"*"``: any) after the first
        ``after``, but keep their HTTP answers back until ``release()`` (or ``stop()``): the
        client waits as it would for an answer lost on a slow network. ``Hold.held`` lists
        them, so a test can say exactly which calls were on the wire when it killed a client.
        """
        hold = Hold(method=method.lower(), after=after)
        self._holds.append(hold)
        return hold

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every call for this chat answers 403 until unblock()."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def enforce_limits(
        self,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
        *,
        retry_after: int = 1,
        count_edits: bool = False,
    ) -> None:
        """Answer 429 (retry_after) for message sends over the given sliding 1s windows."""
        self._limit_global = global_per_second
        self._limit_chat = per_chat_per_second
        self._limit_retry_after = retry_after
        self._limit_count_edits = count_edits
        self._window_global.clear()
        self._window_chat.clear()

    def disable_limits(self) -> None:
        self._limit_global = None
        self._limit_chat = None

    # ===================================================================== internals
    def _canonical(self, method: str) -> str:
        spec = self._methods.get(method.lower())
        return spec[0] if spec else method

    def _chat(self, chat_id: int) -> _ChatState:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _ChatState(chat_id)
        return chat

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    async def _park(waiters: list[asyncio.Future[None]], timeout: float) -> None:  # noqa: ASYNC109
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if fut.cancelled() or not fut.done():
                with contextlib.suppress(ValueError):
                    waiters.remove(fut)

    async def _wait_chat(
        self,
        chat: _ChatState,
        ready: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
        what: str,
    ) -> None:
        deadline = self._loop_time() + timeout
        while not ready():
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                raise AssertionError(
                    f"no {what} from the bot in chat {chat.chat_id} within {timeout}s; "
                    f"recent transcript:\n{self.transcript(chat.chat_id)}"
                )
            await self._park(chat.waiters, remaining)

    def _notify(self) -> None:
        if self._generic_waiters:
            for fut in self._generic_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._generic_waiters.clear()

    def _wake_poller(self, reason: str) -> None:
        waiter = self._poll_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(reason)

    def _webhook_state(self) -> str:
        targets = ", ".join(self._webhook_targets) or "none"
        return (
            f"webhook {self.webhook_url or '(not set)'} (webhook_targets: {targets}); "
            f"updates: {self.pending_updates()} pending, {self._in_flight} in flight, "
            f"{len(self.webhook_deliveries)} attempts, "
            f"last error {self.webhook_last_error_message!r}"
        )

    def _enqueue_for_webhook(self, update: JSON) -> None:
        chat_id = _update_chat_id(update)
        key: int | str = f"update {update['update_id']}" if chat_id is None else chat_id
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(key)
        lane.updates.append(update)
        self._lane_updates += 1
        self._schedule_lane(lane)

    def _schedule_lane(self, lane: _Lane) -> None:
        """Queue ``lane`` for a connection if it has an update and nothing holds it back."""
        if lane.updates and not (lane.busy or lane.queued or lane.retry is not None):
            lane.queued = True
            self._ready_lanes.append(lane)
            self._webhook_wakeup.set()

    def _forget_lane_if_empty(self, lane: _Lane) -> None:
        if lane.updates or lane.busy:
            return
        if lane.retry is not None:
            lane.retry.cancel()
            lane.retry = None
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]

    def _take_lane_updates(self, keep: Callable[[JSON], bool]) -> list[JSON]:
        """Remove the updates ``keep`` rejects (in flight or not) from the lanes, oldest first."""
        taken: list[JSON] = []
        for lane in list(self._lanes.values()):
            kept: deque[JSON] = deque()
            for update in lane.updates:
                (kept if keep(update) else taken).append(update)
            lane.updates = kept
            self._forget_lane_if_empty(lane)
        self._lane_updates -= len(taken)
        taken.sort(key=lambda u: int(u["update_id"]))
        return taken

    def _retry_lanes_now(self) -> None:
        for lane in self._lanes.values():
            if lane.retry is not None:
                lane.retry.cancel()
                lane.retry = None
                lane.failures = 0
                self._schedule_lane(lane)

    def _retry_lane(self, lane: _Lane) -> None:
        lane.retry = None
        self._schedule_lane(lane)

    def _webhook_on(self) -> None:
        while self._queue:
            self._enqueue_for_webhook(self._queue.popleft())

    def _webhook_off(self) -> None:
        """Hand every undelivered update back to getUpdates."""
        for lane in self._ready_lanes:
            lane.queued = False
        self._ready_lanes.clear()
        self._queue.extend(self._take_lane_updates(lambda update: False))

    async def _run_webhook(self) -> None:
        """The server's delivery task: start deliveries while connections are free."""
        while True:
            await self._webhook_wakeup.wait()
            self._webhook_wakeup.clear()
            while (
                self._ready_lanes
                and self.webhook_url
                and self._in_flight < self.webhook_max_connections
            ):
                lane = self._ready_lanes.popleft()
                lane.queued = False
                if not lane.updates or lane.busy or lane.retry is not None:
                    continue
                lane.busy = True
                self._in_flight += 1
                task = asyncio.create_task(self._deliver(lane, lane.updates[0]))
                self._delivery_tasks.add(task)
                task.add_done_callback(self._delivery_tasks.discard)
                self._notify()  # webhook_in_flight changed

    def _webhook_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (err := task.exception()) is not None:
            self._internal_error("webhook task", err)

    async def _stop_webhook(self) -> None:
        tasks = [*self._delivery_tasks]
        if self._webhook_task is not None:
            tasks.append(self._webhook_task)
            self._webhook_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # a delivery cancelled before it ran never reached its own cleanup
        self._in_flight = 0
        for lane in list(self._lanes.values()):
            if lane.retry is not None:
                lane.retry.cancel()
                lane.retry = None
            lane.busy = lane.queued = False
            self._forget_lane_if_empty(lane)
        self._ready_lanes.clear()
        http, self._webhook_http = self._webhook_http, None
        if http is not None:
            await http.close()

    async def _deliver(self, lane: _Lane, update: JSON) -> None:
        try:
            delivered = await self._post_update(update)
        except Exception as err:  # a bug in the fake itself: make it loud
            self._internal_error("webhook delivery", err)
            delivered = False
        finally:
            lane.busy = False
            self._in_flight -= 1
        if delivered:
            lane.failures = 0
            if lane.updates and lane.updates[0] is update:
                lane.updates.popleft()
                self._lane_updates -= 1
        elif lane.updates:
            lane.failures += 1
            delay = min(
                self.webhook_retry_delay * 2 ** (lane.failures - 1), self.webhook_retry_max_delay
            )
            lane.retry = asyncio.get_running_loop().call_later(delay, self._retry_lane, lane)
        self._schedule_lane(lane)
        self._forget_lane_if_empty(lane)
        self._webhook_wakeup.set()
        self._notify()

    def _next_webhook_target(self) -> str:
        targets = self._webhook_targets
        if not targets:
            return self.webhook_url
        target = targets[self._webhook_turn % len(targets)]
        self._webhook_turn += 1
        return target

    def _webhook_session(self) -> aiohttp.ClientSession:
        if self._webhook_http is None or self._webhook_http.closed:
            # a fresh connection per delivery: a stopped replica never leaves a dead one behind
            connector = aiohttp.TCPConnector(force_close=True, limit=0)
            self._webhook_http = aiohttp.ClientSession(connector=connector)
        return self._webhook_http

    async def _post_update(self, update: JSON) -> bool:
        """POST ``update`` to the next target; True when it answered 2xx."""
        target = self._next_webhook_target()
        if not target:  # deleteWebhook came first; the update is back with getUpdates
            return False
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[_SECRET_HEADER] = self.webhook_secret
        status: int | None = None
        error: str | None = None
        reply: JSON | None = None
        if not _is_loopback(target):
            error = (
                f"Failed to resolve host: fakebot delivers only to loopback hosts, not "
                f"{URL(target).host!r}; set webhook_targets"
            )
        else:
            timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
            try:
                async with self._webhook_session().post(
                    target, data=_json_bytes(update), headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        reply = await self._read_webhook_reply(resp)
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except aiohttp.ClientConnectorError as err:
                refused = isinstance(err.os_error, ConnectionRefusedError)
                error = "Connection refused" if refused else f"Connection failed: {err}"
            except TimeoutError:
                error = "Read timeout expired"
            except aiohttp.ClientError as err:
                error = f"Connection error: {type(err).__name__}: {err}"
        self.webhook_deliveries.append(WebhookDelivery(int(update["update_id"]), target, status))
        if error is not None:
            self.webhook_last_error_date = int(self.now())
            self.webhook_last_error_message = error
            log.info("fakebot: webhook delivery to %s failed: %s", target, error)
            return False
        if reply is not None:
            await self._invoke(str(reply.pop("method")), reply, self.monotonic())
        return True

    async def _read_webhook_reply(self, resp: aiohttp.ClientResponse) -> JSON | None:
        """The method call in a webhook answer's body, if any (Telegram ignores bad ones)."""
        ctype = resp.content_type
        params: JSON
        try:
            if ctype == "application/json":
                body = await resp.json(content_type=None)
                if not isinstance(body, dict):
                    return None
                params = {k: _coerce(k, v) if isinstance(v, str) else v for k, v in body.items()}
            elif ctype == "multipart/form-data":
                fields: list[tuple[str, str | UploadedFile]] = []
                async for part in aiohttp.MultipartReader(resp.headers, resp.content):
                    if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                        continue
                    if part.filename is None:
                        fields.append((part.name, await part.text()))
                    else:
                        data = await part.read(decode=True)
                        mime = part.headers.get("Content-Type", "application/octet-stream")
                        fields.append((part.name, UploadedFile(part.filename, mime, data)))
                params = self._form_params({}, fields)
            elif ctype == "application/x-www-form-urlencoded":
                pairs = urllib.parse.parse_qsl(await resp.text(), keep_blank_values=True)
                params = {k: _coerce(k, v) for k, v in pairs}
            else:
                return None
        except (ValueError, aiohttp.ClientPayloadError) as err:
            log.warning("fakebot: unreadable webhook answer (%s) ignored: %s", ctype, err)
            return None
        method = params.get("method")
        return params if isinstance(method, str) and method else None

    def _internal_error(self, where: str, err: BaseException) -> ApiError:
        log.error("fakebot: internal error in %s", where, exc_info=err)
        description = f"Internal Server Error: fakebot bug: {type(err).__name__}: {err}"
        self.internal_errors.append(f"{where}: {description}")
        return ApiError(500, description)

    def _is_allowed(self, kind: str) -> bool:
        if self._allowed_updates is None:
            return kind not in _NOT_DEFAULT_UPDATES
        return kind in self._allowed_updates

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._counts[call.method] += 1
        if call.status == 200:
            self._ok_counts[call.method] += 1
        elif call.status == 429:
            self.count_429 += 1
        if call.chat_id is not None:
            chat = self._chat(call.chat_id)
            chat.calls.append(call)
            if call.status != 200:
                chat.log.append(("err", call))
        self._notify()

    @staticmethod
    def _response(status: int, body: JSON) -> web.Response:
        return web.Response(status=status, body=_json_bytes(body), content_type="application/json")

    async def _read_params(self, request: web.Request) -> JSON:
        params: JSON = {k: _coerce(k, v) for k, v in request.query.items()}
        if not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise _bad("request body must be a JSON object")
            for key, value in body.items():
                params[key] = _coerce(key, value) if isinstance(value, str) else value
            return params
        if ctype not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return params
        form = await request.post()
        fields: list[tuple[str, str | UploadedFile]] = []
        for key, value in form.items():
            if isinstance(value, web.FileField):
                upload = UploadedFile(
                    filename=value.filename or key,
                    content_type=value.content_type or "application/octet-stream",
                    data=value.file.read(),
                )
                fields.append((key, upload))
            else:
                fields.append((key, str(value)))
        return self._form_params(params, fields)

    def _form_params(self, params: JSON, fields: list[tuple[str, str | UploadedFile]]) -> JSON:
        """Add form fields to ``params``, resolving ``attach://`` references to file parts."""
        files: dict[str, UploadedFile] = {}
        for key, value in fields:
            if isinstance(value, UploadedFile):
                files[key] = value
            else:
                params[key] = _coerce(key, value)
        if files:
            params = {k: self._attach(v, files) for k, v in params.items()}
            params.update(files)  # directly-named file parts (and unreferenced ones)
        return params

    def _attach(self, value: Any, files: dict[str, UploadedFile]) -> Any:
        if isinstance(value, str):
            if value.startswith("attach://") and value[9:] in files:
                return files.pop(value[9:])
            return value
        if isinstance(value, list):
            return [self._attach(v, files) for v in value]
        if isinstance(value, dict):
            return {k: self._attach(v, files) for k, v in value.items()}
        return value

    def _chat_id_of(self, name: str, params: JSON) -> int | None:
        value = params.get("chat_id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if name == "answerCallbackQuery":
            return self._callback_chats.get(str(params.get("callback_query_id")))
        return None

    def _check_limits(self, lname: str, chat_id: int | None) -> None:
        if self._limit_global is None and self._limit_chat is None:
            return
        counted = lname in _MESSAGE_SENDING or (
            self._limit_count_edits and lname.startswith("editmessage")
        )
        if not counted:
            return
        now = self.monotonic()
        horizon = now - 1.0
        window = self._window_global
        while window and window[0] <= horizon:
            window.popleft()
        chat_window: deque[float] | None = None
        if chat_id is not None and self._limit_chat is not None:
            chat_window = self._window_chat.get(chat_id)
            if chat_window is None:
                chat_window = self._window_chat[chat_id] = deque()
            while chat_window and chat_window[0] <= horizon:
                chat_window.popleft()
        over_global = self._limit_global is not None and len(window) >= self._limit_global
        over_chat = (
            chat_window is not None
            and self._limit_chat is not None
            and len(chat_window) >= self._limit_chat
        )
        if over_global or over_chat:
            retry = self._limit_retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        window.append(now)
        if chat_window is not None:
            chat_window.append(now)

    async def _handle(self, request: web.Request) -> web.Response:
        at = self.monotonic()
        raw_method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self._record(Call(raw_method, {}, None, at, 401, description="Unauthorized"))
            return self._response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        name = self._canonical(raw_method)
        try:
            params = await self._load_params(request, name)
        except ApiError as err:
            self._record(Call(name, {}, None, at, err.status, None, err.description))
            return self._response(err.status, err.body())
        status, body = await self._invoke(raw_method, params, at)
        await self._keep_back(self.calls[-1])  # the call `_invoke` has just recorded
        return self._response(status, body)

    async def _keep_back(self, call: Call) -> None:
        for hold in self._holds:
            if hold.matches(call.method) and not hold.released.is_set():
                hold.seen += 1
                if hold.seen > hold.after:
                    hold.held.append(call)
                    self._notify()
                    await hold.released.wait()
                    return

    async def _load_params(self, request: web.Request, name: str) -> JSON:
        try:
            return await self._read_params(request)
        except ApiError:
            raise
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise _bad(f"can't parse request: {err}") from None
        except Exception as err:  # a bug in the fake itself: make it loud
            raise self._internal_error(name, err) from None

    async def _invoke(self, raw_method: str, params: JSON, at: float) -> tuple[int, JSON]:
        """Run one Bot API call (from HTTP or a webhook answer), record it, return the answer."""
        lname = raw_method.lower()
        spec = self._methods.get(lname)
        name = spec[0] if spec else raw_method
        chat_id: int | None = None
        result: Any = None
        try:
            chat_id = self._chat_id_of(name, params)
            if spec is None:
                self.unknown_methods[raw_method] += 1
                log.warning("fakebot: unknown Bot API method %s", raw_method)
                raise ApiError(404, "Not Found")
            for rule in self._failures:
                if rule.matches(lname, chat_id):
                    rule.hits += 1
                    if rule.exhausted:
                        self._failures.remove(rule)
                    raise rule.error()
            if chat_id is not None and chat_id in self._blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            self._check_limits(lname, chat_id)
            result = await spec[1](params)
        except ApiError as err:
            self._record(Call(name, params, chat_id, at, err.status, None, err.description))
            return err.status, err.body()
        except Exception as err:  # a bug in the fake itself: make it loud
            error = self._internal_error(name, err)
            self._record(Call(name, params, chat_id, at, 500, None, error.description))
            return 500, error.body()
        self._record(Call(name, params, chat_id, at, 200, result))
        return 200, {"ok": True, "result": result}

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        stored = self._files_by_path.get(request.match_info["path"])
        if request.match_info["token"] != self.token or stored is None:
            return self._response(
                404, {"ok": False, "error_code": 404, "description": "Not Found"}
            )
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # -- helpers for method handlers -----------------------------------------------------
    def _require_chat(self, params: JSON) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise _bad("chat_id is empty")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad("chat not found")
        if self.require_known_chats and value not in self._known_chats:
            raise _bad("chat not found")
        return value

    def _chat_obj(self, chat_id: int) -> JSON:
        known = self._known_chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
        return {"id": chat_id, "type": "private", "first_name": "User"}

    def _formatted(
        self, params: JSON, key: str, *, limit: int, required: bool
    ) -> tuple[str | None, list[JSON]]:
        value = params.get(key)
        if value is None:
            if required:
                raise _bad("message text is empty")
            return None, []
        text = str(value)
        entities = params.get("entities" if key == "text" else "caption_entities")
        mode = str(params.get("parse_mode") or "").lower()
        if isinstance(entities, list):
            plain, ents = text, entities
        elif mode == "html":
            try:
                plain, ents = parse_html(text)
            except EntityParseError as err:
                raise _bad(f"can't parse entities: {err}") from None
        else:
            plain, ents = text, []
        if required and not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > limit:
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        return plain, ents

    @staticmethod
    def _markup(params: JSON, *, inline_only: bool = False) -> JSON | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be '
                    "an Array of Arrays"
                )
            for button in (b for row in rows for b in row):
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise _bad("can't parse inline keyboard button: Text is not specified")
                if not any(button.get(k) is not None for k in INLINE_ACTIONS):
                    raise _bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
        elif inline_only:
            raise _bad("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad(
                    'field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays'
                )
        return markup

    def _new_message(self, chat_id: int, content: JSON, markup: JSON | None) -> JSON:
        chat = self._chat(chat_id)
        msg: JSON = {
            "message_id": self.next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat_obj(chat_id),
            "date": int(self.now()),
        }
        msg.update(content)
        if markup is not None:
            if "inline_keyboard" in markup:
                msg["reply_markup"] = markup
            elif "keyboard" in markup:
                chat.reply_keyboard = markup
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        return msg

    def _reply_to(self, chat_id: int, params: JSON, msg: JSON) -> None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        if target is None:
            target = params.get("reply_to_message_id")
        if not isinstance(target, int):
            return
        chat = self._chat(chat_id)
        original: JSON | None = chat.user_messages.get(target)
        if original is None and target in chat.messages:
            original = chat.messages[target].raw
        if original is not None:
            msg["reply_to_message"] = {
                k: v for k, v in original.items() if k != "reply_to_message"
            }

    def _output(
        self,
        chat_id: int,
        method: str,
        params: JSON,
        raw: JSON,
        markup: JSON | None,
        *,
        edited: bool = False,
    ) -> SentMessage:
        text = raw.get("text", raw.get("caption"))
        sent = SentMessage(
            chat_id=chat_id,
            message_id=int(raw["message_id"]),
            text="" if text is None else str(text),
            reply_markup=markup,
            method=method,
            params=params,
            raw=raw,
            at=self.monotonic(),
            edited=edited,
        )
        chat = self._chat(chat_id)
        chat.messages[sent.message_id] = sent
        chat.outputs.append(sent)
        chat.log.append(("out", sent))
        chat.wake()
        return sent

    def _editable(self, params: JSON) -> tuple[int, SentMessage]:
        if params.get("inline_message_id"):
            raise _bad("inline messages are not supported by the fake server")
        chat_id = self._require_chat(params)
        message_id = _as_int(params.get("message_id"))
        chat = self._chats.get(chat_id)
        current = chat.messages.get(message_id) if chat else None
        if current is None or current.deleted:
            if chat is not None and message_id in chat.user_messages:
                raise _bad("message can't be edited")
            raise _bad("message to edit not found")
        return chat_id, current

    def _apply_edit(
        self,
        method: str,
        params: JSON,
        chat_id: int,
        current: SentMessage,
        changes: JSON,
        markup: JSON | None,
    ) -> JSON:
        raw = dict(current.raw)
        for key, value in changes.items():
            if value is None or value == []:
                raw.pop(key, None)
            else:
                raw[key] = value
        if markup is None:
            raw.pop("reply_markup", None)
        else:
            raw["reply_markup"] = markup
        if raw == current.raw:
            raise _bad(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        raw["edit_date"] = int(self.now())
        self._output(chat_id, method, params, raw, markup, edited=True)
        return raw

    def _input_file(self, value: Any, kind: str) -> JSON:
        if isinstance(value, UploadedFile):
            default_name, default_type = _MEDIA_DEFAULT_NAMES[kind]
            name = value.filename or default_name
            mime = value.content_type
            if mime in ("", "application/octet-stream"):
                mime = mimetypes.guess_type(name)[0] or default_type
            info = self.register_file(value.data, kind=kind, file_name=name, mime_type=mime)
            return {**info, "file_name": name, "mime_type": mime}
        if isinstance(value, str):
            stored = self._files.get(value)
            if stored is not None:
                return {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": len(stored.data),
                    "file_name": stored.file_name,
                    "mime_type": stored.mime_type,
                }
            if value.startswith(("http://", "https://")):
                name = value.rsplit("/", 1)[-1] or _MEDIA_DEFAULT_NAMES[kind][0]
                mime = mimetypes.guess_type(name)[0] or _MEDIA_DEFAULT_NAMES[kind][1]
                info = self.register_file(FAKE_JPEG, kind=kind, file_name=name, mime_type=mime)
                return {**info, "file_name": name, "mime_type": mime}
            raise _bad("wrong file identifier/HTTP URL specified")
        raise _bad(f"there is no {kind} in the request")

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        if not isinstance(scope, dict):
            scope = {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    # ===================================================================== methods
    async def _m_true(self, params: JSON) -> bool:
        return True

    async def _m_get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset"))
        limit = max(1, min(100, _as_int(params.get("limit"), 100)))
        timeout = max(0.0, _as_float(params.get("timeout") or 0, "timeout"))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._set_allowed_updates(allowed)
        self._confirm(offset)
        # Telegram terminates an older concurrent long poll with 409 Conflict.
        self._wake_poller("conflict")
        if not self._queue and timeout > 0 and not self._closing:
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._poll_waiter = fut
            self._notify()  # `polling` became true
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, timeout)
            finally:
                if self._poll_waiter is fut:
                    self._poll_waiter = None
            if fut.done() and not fut.cancelled() and fut.result() == "conflict":
                raise ApiError(409, _DEFAULT_DESCRIPTIONS[409])
        return list(itertools.islice(self._queue, limit))

    def _set_allowed_updates(self, allowed: list[Any]) -> None:
        self._allowed_updates = frozenset(str(a) for a in allowed) if allowed else None
        kept: deque[JSON] = deque()
        for update in self._queue:
            if self._is_allowed(_update_type(update)):
                kept.append(update)
            else:
                self.dropped_updates.append(update)
        self._queue = kept
        self.dropped_updates.extend(
            self._take_lane_updates(lambda update: self._is_allowed(_update_type(update)))
        )

    def _confirm(self, offset: int) -> None:
        queue = self._queue
        if offset > 0:
            while queue and queue[0]["update_id"] < offset:
                queue.popleft()
            self.confirmed_offset = max(self.confirmed_offset, offset)
        elif offset < 0:
            while len(queue) > -offset:
                queue.popleft()
            if queue:
                self.confirmed_offset = max(self.confirmed_offset, queue[0]["update_id"])

    async def _m_set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._m_delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: an HTTP(S) URL must be provided for webhook")
        secret = params.get("secret_token")
        secret = None if secret is None or secret == "" else str(secret)
        if secret is not None and not _SECRET_TOKEN_RE.match(secret):
            raise _bad("secret token contains unallowed characters")
        max_connections = max(1, min(100, _as_int(params.get("max_connections"), 40)))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._set_allowed_updates(allowed)
        drop = bool(params.get("drop_pending_updates"))
        if drop:
            self._drop_pending()
        if url != self.webhook_url:
            self.webhook_last_error_date = self.webhook_last_error_message = None
        was_set = bool(self.webhook_url)
        self.webhook_url = url
        self.webhook_secret = secret
        self.webhook_max_connections = max_connections
        self.webhook_drop_pending_updates = drop
        if not was_set:
            self._webhook_on()
            self._wake_poller("conflict")
        self._retry_lanes_now()
        self._webhook_wakeup.set()
        return True

    async def _m_delete_webhook(self, params: JSON) -> bool:
        if params.get("drop_pending_updates"):
            self._drop_pending()
        if self.webhook_url:
            self._webhook_off()
        self.webhook_url = ""
        self.webhook_secret = None
        self.webhook_max_connections = 40
        self.webhook_drop_pending_updates = False
        self.webhook_last_error_date = self.webhook_last_error_message = None
        return True

    def _drop_pending(self) -> None:
        pending = [*self._queue, *self._take_lane_updates(lambda update: False)]
        self._queue.clear()
        if pending:
            last = max(int(u["update_id"]) for u in pending)
            self.confirmed_offset = max(self.confirmed_offset, last + 1)
            self.dropped_updates.extend(pending)

    async def _m_get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates(),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
        if self.webhook_last_error_date is not None:
            info["last_error_date"] = self.webhook_last_error_date
            info["last_error_message"] = self.webhook_last_error_message
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _m_send_message(self, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        text, entities = self._formatted(params, "text", limit=4096, required=True)
        markup = self._markup(params)
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        msg = self._new_message(chat_id, content, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, "sendMessage", params, msg, markup)
        return msg

    async def _m_send_location(self, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        location: JSON = {
            "latitude": _as_float(params.get("latitude"), "latitude"),
            "longitude": _as_float(params.get("longitude"), "longitude"),
        }
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        markup = self._markup(params)
        msg = self._new_message(chat_id, {"location": location}, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, "sendLocation", params, msg, markup)
        return msg

    def _media_handler(self, name: str, kind: str) -> Callable[[JSON], Awaitable[JSON]]:
        async def handler(params: JSON) -> JSON:
            return self._send_media(name, kind, params)

        return handler

    def _send_media(self, name: str, kind: str, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        info = self._input_file(params.get(kind), kind)
        caption: str | None = None
        entities: list[JSON] = []
        if kind not in ("sticker", "video_note"):
            caption, entities = self._formatted(params, "caption", limit=1024, required=False)
        markup = self._markup(params)
        base = {"file_id": info["file_id"], "file_unique_id": info["file_unique_id"]}
        size = info["file_size"]
        media: Any
        if kind == "photo":
            media = [
                {**base, "width": 90, "height": 90, "file_size": min(size, 1000)},
                {**base, "width": 1280, "height": 960, "file_size": size},
            ]
        elif kind == "sticker":
            media = {
                **base,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        else:
            media = {**base, "file_size": size}
            if kind in ("document", "video", "audio", "animation") and info.get("file_name"):
                media["file_name"] = info["file_name"]
            if info.get("mime_type") and kind != "video_note":
                media["mime_type"] = info["mime_type"]
            if kind in ("video", "audio", "voice", "animation", "video_note"):
                media["duration"] = _as_int(params.get("duration"), 1)
            if kind in ("video", "animation"):
                media["width"] = _as_int(params.get("width"), 640)
                media["height"] = _as_int(params.get("height"), 480)
            if kind == "video_note":
                media["length"] = _as_int(params.get("length"), 240)
        content: JSON = {kind: media}
        if caption is not None:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        msg = self._new_message(chat_id, content, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, name, params, msg, markup)
        return msg

    async def _m_edit_message_text(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        if "text" not in current.raw:
            raise _bad("there is no text in the message to edit")
        text, entities = self._formatted(params, "text", limit=4096, required=True)
        markup = self._markup(params, inline_only=True)
        changes: JSON = {"text": text, "entities": entities}
        return self._apply_edit("editMessageText", params, chat_id, current, changes, markup)

    async def _m_edit_message_caption(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        if "text" in current.raw or "location" in current.raw:
            raise _bad("there is no caption in the message to edit")
        caption, entities = self._formatted(params, "caption", limit=1024, required=False)
        markup = self._markup(params, inline_only=True)
        changes: JSON = {"caption": caption, "caption_entities": entities}
        return self._apply_edit("editMessageCaption", params, chat_id, current, changes, markup)

    async def _m_edit_message_reply_markup(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        markup = self._markup(params, inline_only=True)
        return self._apply_edit("editMessageReplyMarkup", params, chat_id, current, {}, markup)

    async def _m_delete_message(self, params: JSON) -> bool:
        chat_id = self._require_chat(params)
        message_id = _as_int(params.get("message_id"))
        chat = self._chat(chat_id)
        current = chat.messages.get(message_id)
        if current is not None and not current.deleted:
            chat.messages[message_id] = replace(current, deleted=True)
        elif message_id in chat.user_messages and message_id not in chat.deleted_user_messages:
            chat.deleted_user_messages.add(message_id)
        else:
            raise _bad("message to delete not found")
        chat.log.append(("delete", message_id))
        return True

    async def _m_answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_chats:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        chat_id = self._callback_chats[query_id]
        cache_time = params.get("cache_time")
        answer = CallbackAnswer(
            callback_query_id=query_id,
            text="" if text is None else str(text),
            show_alert=bool(params.get("show_alert")),
            url=params.get("url"),
            cache_time=None if cache_time is None else _as_int(cache_time),
            chat_id=chat_id,
            params=params,
            at=self.monotonic(),
        )
        self.callback_answers.append(answer)
        if self._answer_waiters:
            for fut in self._answer_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._answer_waiters.clear()
        if chat_id is not None:
            chat = self._chat(chat_id)
            chat.answers.append(answer)
            chat.log.append(("answer", answer))
            chat.wake()
        return True

    async def _m_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad("commands must be an Array")
        if len(commands) > 100:
            raise _bad("too many commands")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(
                str(command.get("command", ""))
            ):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("command description is invalid")
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _m_delete_my_commands(self, params: JSON) -> bool:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        self._commands.pop(key, None)
        return True

    async def _m_get_my_commands(self, params: JSON) -> list[JSON]:
        key = self._commands_key(params.get("scope"), params.get("language_code"))
        return list(self._commands.get(key, []))

    async def _m_set_chat_menu_button(self, params: JSON) -> bool:
        chat_id = params.get("chat_id")
        button = params.get("menu_button")
        key = chat_id if isinstance(chat_id, int) else None
        self.menu_buttons[key] = button if isinstance(button, dict) else {"type": "default"}
        return True

    async def _m_get_chat_menu_button(self, params: JSON) -> JSON:
        chat_id = params.get("chat_id")
        key = chat_id if isinstance(chat_id, int) else None
        found = self.menu_buttons.get(key) or self.menu_buttons.get(None)
        return found or {"type": "default"}

    async def _m_send_chat_action(self, params: JSON) -> bool:
        self._require_chat(params)
        if str(params.get("action")) not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    async def _m_get_file(self, params: JSON) -> JSON:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        return stored.as_file()
