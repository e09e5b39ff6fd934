"""What the local Bot API remembers, and the wake-ups that let waiters see it change.

:class:`LocalBotAPI` is one object, written as mixins over :class:`ServerState` so that each
concern (updates, webhook delivery, messages, edits, files, failures, inspection) has a module of
its own. The state they share lives here, in one ``__init__``, so nothing is declared twice; the
few methods one mixin calls in another are declared at the end, for the type checker only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .params import ApiError, bad
from .records import JSON, Call, CallbackAnswer, SentMessage, WebhookDelivery

if TYPE_CHECKING:
    import aiohttp

    from .failures import FailureRule, Hold
    from .files import StoredFile
    from .users import FakeUser
    from .webhook import Lane

log = logging.getLogger("bot.localapi")


class ChatState:
    """One chat as the server sees it: the bot's messages, their outputs in order, and who
    waits for the next one."""

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


class ServerState:
    """The server's memory. See the module docstring."""

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
        self._chats: dict[int, ChatState] = {}
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
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._limit_global: int | None = None
        self._limit_chat: int | None = None
        self._limit_retry_after = 1
        self._limit_count_edits = False
        self._window_global: deque[float] = deque()
        self._window_chat: dict[int, deque[float]] = {}
        self._closing = False
        self._webhook_targets: tuple[str, ...] = ()
        self._webhook_turn = 0
        self._lanes: dict[int | str, Lane] = {}
        self._ready_lanes: deque[Lane] = deque()
        self._lane_updates = 0
        self._in_flight = 0
        self._webhook_wakeup = asyncio.Event()
        self._webhook_task: asyncio.Task[None] | None = None
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self._webhook_http: aiohttp.ClientSession | None = None
        #: Bot API methods by lower-case name: (canonical name, handler); see server.py
        self._methods: dict[str, tuple[str, Callable[[JSON], Awaitable[Any]]]] = {}

    # ----------------------------------------------------------------- chats
    def _chat(self, chat_id: int) -> ChatState:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = ChatState(chat_id)
        return chat

    def register_chat(self, chat: JSON) -> None:
        """Remember a Chat object (``{"id", "type", ...}``) used in bot messages' ``chat``."""
        self._known_chats[int(chat["id"])] = dict(chat)

    def next_message_id(self, chat_id: int) -> int:
        """Allocate a message id in ``chat_id`` (shared by user and bot messages)."""
        chat = self._chat(chat_id)
        mid = chat.next_message_id
        chat.next_message_id += 1
        return mid

    def _chat_obj(self, chat_id: int) -> JSON:
        known = self._known_chats.get(chat_id)
        if known is not None:
            return dict(known)
        if chat_id < 0:
            kind = "supergroup" if str(chat_id).startswith("-100") else "group"
            return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}
        return {"id": chat_id, "type": "private", "first_name": "User"}

    def _require_chat(self, params: JSON) -> int:
        value = params.get("chat_id")
        if value is None or value == "":
            raise bad("chat_id is empty")
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("chat not found")
        if self.require_known_chats and value not in self._known_chats:
            raise bad("chat not found")
        return value

    # ----------------------------------------------------------------- updates
    def pending_updates(self) -> int:
        """Updates not yet confirmed by getUpdates' offset or by a 2xx from the webhook."""
        return len(self._queue) + self._lane_updates

    @property
    def last_update_id(self) -> int:
        return self._next_update_id - 1

    # ----------------------------------------------------------------- calls
    def _canonical(self, method: str) -> str:
        spec = self._methods.get(method.lower())
        return spec[0] if spec else method

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

    def _internal_error(self, where: str, err: BaseException) -> ApiError:
        log.error("localapi: internal error in %s", where, exc_info=err)
        description = f"Internal Server Error: localapi bug: {type(err).__name__}: {err}"
        self.internal_errors.append(f"{where}: {description}")
        return ApiError(500, description)

    # ----------------------------------------------------------------- waking waiters
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

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 30.0,  # noqa: ASYNC109  (a ceiling: under load a bot takes longer)
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

    if TYPE_CHECKING:
        # Provided by the other mixins (see the module docstring).
        async def _invoke(self, raw_method: str, params: JSON, at: float) -> tuple[int, JSON]: ...

        def _enqueue_for_webhook(self, update: JSON) -> None: ...

        def _take_lane_updates(self, keep: Callable[[JSON], bool]) -> list[JSON]: ...

        def _webhook_state(self) -> str: ...

        def _set_allowed_updates(self, allowed: list[Any]) -> None: ...

        def _drop_pending(self) -> None: ...

        def transcript(self, chat_id: int) -> str: ...

        def register_file(
            self,
            data: bytes,
            *,
            kind: str = "document",
            file_name: str | None = None,
            mime_type: str | None = None,
        ) -> JSON: ...
