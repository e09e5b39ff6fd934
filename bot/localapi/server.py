"""The local Bot API server: the mixins put together, the method table, and HTTP.

Point the real aiogram client at it::

    async with LocalBotAPI() as server:
        api = TelegramAPIServer.from_base(server.url)
        bot = Bot(server.token, session=AiohttpSession(api=api))
        user = server.user(1001)
        user.send("/start")
        reply = await server.next_reply(1001)

Everything is event driven (futures, no polling sleeps) and O(1) per request. Every call is
recorded (``calls``) whatever its answer; a bug in the server itself answers 500 and is kept in
``internal_errors`` so a test sees it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Self

from aiohttp import web

from bot.localserving import LocalServer

from .editing import EditMethods
from .failures import FailureInjection
from .files import MEDIA_DEFAULT_NAMES
from .inspection import Inspection
from .params import ApiError, bad, json_response, read_params
from .profile import TRUE_METHODS, BotProfile
from .records import JSON, Call
from .updates import UpdateQueue
from .webhook import WebhookSender

if TYPE_CHECKING:
    from .users import FakeUser

log = logging.getLogger("bot.localapi")


class LocalBotAPI(
    EditMethods, UpdateQueue, WebhookSender, FailureInjection, BotProfile, Inspection, LocalServer
):
    """A Telegram Bot API server on this machine. See the package docstring."""

    MAX_BODY = 64 * 1024 * 1024
    CANCEL_HANDLERS = True

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
        super().__init__(
            token,
            bot_id,
            bot_username,
            bot_first_name=bot_first_name,
            now=now,
            require_known_chats=require_known_chats,
        )
        handlers: list[tuple[str, Callable[[JSON], Awaitable[Any]]]] = [
            ("getMe", self._m_get_me),
            ("getUpdates", self._m_get_updates),
            ("setWebhook", self._m_set_webhook),
            ("deleteWebhook", self._m_delete_webhook),
            ("getWebhookInfo", self._m_get_webhook_info),
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
        for kind in MEDIA_DEFAULT_NAMES:
            name = "send" + "".join(p.capitalize() for p in kind.split("_"))
            handlers.append((name, self._media_handler(name, kind)))
        handlers.extend((name, self._m_true) for name in TRUE_METHODS)
        self._methods = {name.lower(): (name, fn) for name, fn in handlers}

    # ----------------------------------------------------------------- lifecycle
    def routes(self) -> list[web.RouteDef]:
        """The Bot API's routes, to serve them from another aiohttp application too."""
        return [
            web.route("*", "/bot{token}/{method}", self._handle),
            web.get("/file/bot{token}/{path:.+}", self._handle_file),
        ]

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Start serving on ``host:port`` (0 = a free port). Can be restarted after stop()."""
        self._closing = False  # (already so when it is running, which start refuses)
        await super().start(host, port)
        self._start_webhook()
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
        await super().stop()

    # ----------------------------------------------------------------- users
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

    @property
    def users(self) -> dict[int, FakeUser]:
        return self._users

    # ----------------------------------------------------------------- HTTP
    async def _handle(self, request: web.Request) -> web.Response:
        at = self.monotonic()
        raw_method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            self._record(Call(raw_method, {}, None, at, 401, description="Unauthorized"))
            return json_response(
                401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        name = self._canonical(raw_method)
        try:
            params = await self._load_params(request, name)
        except ApiError as err:
            self._record(Call(name, {}, None, at, err.status, None, err.description))
            return json_response(err.status, err.body())
        status, body = await self._invoke(raw_method, params, at)
        await self._keep_back(self.calls[-1])  # the call `_invoke` has just recorded
        return json_response(status, body)

    async def _load_params(self, request: web.Request, name: str) -> JSON:
        try:
            return await read_params(request)
        except ApiError:
            raise
        except web.HTTPRequestEntityTooLarge:
            raise ApiError(413, "Request Entity Too Large") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise bad(f"can't parse request: {err}") from None
        except Exception as err:  # a bug in the server itself: make it loud
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
                log.warning("localapi: unknown Bot API method %s", raw_method)
                raise ApiError(404, "Not Found")
            self._refuse(lname, chat_id)
            result = await spec[1](params)
        except ApiError as err:
            self._record(Call(name, params, chat_id, at, err.status, None, err.description))
            return err.status, err.body()
        except Exception as err:  # a bug in the server itself: make it loud
            error = self._internal_error(name, err)
            self._record(Call(name, params, chat_id, at, 500, None, error.description))
            return 500, error.body()
        self._record(Call(name, params, chat_id, at, 200, result))
        return 200, {"ok": True, "result": result}

    def _chat_id_of(self, name: str, params: JSON) -> int | None:
        value = params.get("chat_id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if name == "answerCallbackQuery":
            return self._callback_chats.get(str(params.get("callback_query_id")))
        return None


FakeBotAPI = LocalBotAPI
"""The name the tests have always used."""
