"""Replies leave after the commit.

While an update is handled, the Bot API calls that only show something (send, edit, answer a
button) are recorded instead of made, and the handler gets a stand-in result. The records are
stored with the update in the journal, in the same transaction as everything else the update
did; once that commits they are sent, one chat in order, chats concurrently. So no database lock
is held across a network call, and a crash after the commit still delivers every reply (the
journal keeps them until they are marked sent)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, cast

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    Response,
    SendChatAction,
    SendDocument,
    SendLocation,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, InputFile, Message

log = logging.getLogger(__name__)

DEFERRED: tuple[type[TelegramMethod[Any]], ...] = (
    SendMessage,
    SendPhoto,
    SendDocument,
    SendLocation,
    EditMessageText,
    EditMessageReplyMarkup,
    EditMessageCaption,
    AnswerCallbackQuery,
    DeleteMessage,
    SendChatAction,
    SetMyCommands,
)
BY_NAME: dict[str, type[TelegramMethod[Any]]] = {m.__api_method__: m for m in DEFERRED}

current_replies: ContextVar[list[TelegramMethod[Any]] | None] = ContextVar(
    "daka_replies", default=None
)
results_unused: ContextVar[bool] = ContextVar("daka_results_unused", default=False)


class ReplySession(AiohttpSession):
    """aiogram's aiohttp session; a sender that needs only success or failure (the replies of
    an update, the scheduler's letters) skips turning Telegram's echo into a `Message`."""

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        if results_unused.get() and HTTPStatus.OK <= status_code < HTTPStatus.MULTIPLE_CHOICES:
            try:
                ok = self.json_loads(content).get("ok") is True
            except ValueError:
                ok = False
            if ok:
                return cast(Response[TelegramType], Response[Any].model_construct(ok=True))
        return super().check_response(bot, method, status_code, content)


def _has_upload(method: TelegramMethod[Any]) -> bool:
    return any(isinstance(value, InputFile) for value in method.__dict__.values())


class DeferReplies(BaseRequestMiddleware):
    """Records deferrable calls made while an update is being handled."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        buffer = current_replies.get()
        if buffer is None or not isinstance(method, DEFERRED) or _has_upload(method):
            return await make_request(bot, method)
        buffer.append(method)
        return cast(Response[TelegramType], Response[Any](ok=True, result=_stand_in(method)))


_STAND_IN = Message.model_construct(
    message_id=0,
    date=datetime(1970, 1, 1, tzinfo=UTC),
    chat=Chat.model_construct(id=0, type="private"),
)


def _stand_in(method: TelegramMethod[Any]) -> Any:
    """What the handler gets back: one shared message without an id (handlers do not read it;
    building a fresh one per call cost 5 % of the bot's time), or True."""
    if isinstance(method, SendMessage | SendPhoto | SendDocument | SendLocation):
        return _STAND_IN
    return True


def dump(methods: Iterable[TelegramMethod[Any]]) -> list[dict[str, Any]]:
    """JSON-ready records; unset bot defaults (parse mode) stay unset, resolved when sent."""
    records = []
    for method in methods:
        data = method.model_dump(
            mode="json",
            exclude_none=True,
            fallback=lambda value: None if isinstance(value, Default) else value,
        )
        records.append(
            {"method": method.__api_method__, **{k: v for k, v in data.items() if v is not None}}
        )
    return records


def load(records: Iterable[dict[str, Any]]) -> list[TelegramMethod[Any]]:
    methods = []
    for record in records:
        fields = dict(record)
        kind = BY_NAME.get(str(fields.pop("method", "")))
        if kind is not None:
            methods.append(kind.model_validate(fields))
    return methods


def chat_of(methods: list[TelegramMethod[Any]], fallback: int) -> int:
    for method in methods:
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int):
            return chat_id
    return fallback


@dataclass
class ReplySender:
    """Sends each update's recorded replies: in order within a chat, chats concurrently; tells
    `on_sent` which updates are done so the journal can forget their replies."""

    bot: Bot
    on_sent: Callable[[int], None]
    max_attempts: int = 5
    _tails: dict[int, asyncio.Task[None]] = field(default_factory=dict)

    def send(self, update_id: int, chat_id: int, methods: list[TelegramMethod[Any]]) -> None:
        previous = self._tails.get(chat_id)
        task = asyncio.create_task(self._after(previous, update_id, methods))
        self._tails[chat_id] = task
        task.add_done_callback(functools.partial(self._forget, chat_id))

    def _forget(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._tails.get(chat_id) is task:
            del self._tails[chat_id]

    @property
    def busy(self) -> bool:
        return bool(self._tails)

    async def drain(self) -> None:
        while self._tails:
            await asyncio.gather(*list(self._tails.values()), return_exceptions=True)

    async def _after(
        self,
        previous: asyncio.Task[None] | None,
        update_id: int,
        methods: list[TelegramMethod[Any]],
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        results_unused.set(True)  # this task's own context
        for method in methods:
            await self._call(method)
        self.on_sent(update_id)

    async def _call(self, method: TelegramMethod[Any]) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.bot(method)
                return
            except TelegramRetryAfter as exc:
                await asyncio.sleep(exc.retry_after)
            except TelegramForbiddenError:
                return  # the user blocked the bot; nothing to deliver
            except (TelegramServerError, TelegramNetworkError) as exc:
                if attempt == self.max_attempts:
                    log.warning("reply %s dropped after %d attempts: %s", method, attempt, exc)
                    return
                await asyncio.sleep(min(10.0, 0.5 * 2**attempt))
            except TelegramAPIError as exc:
                log.warning("reply %s refused: %s", type(method).__name__, exc)
                return
