"""Replies leave after the commit.

While an update is handled, the Bot API calls that only show something (send, edit, answer a
button) are recorded instead of made, and the handler gets a stand-in result. The records are
stored with the update in the journal, in the same transaction as everything else the update
did; once that commits they are sent, one chat in order, chats concurrently. So no database lock
is held across a network call, and a crash after the commit still delivers every reply (the
journal keeps them until they are marked sent).

The records are sent as they are stored: JSON posted straight to the Bot API over aiogram's own
aiohttp session, with the bot's defaults (parse mode) filled in where aiogram would fill them.
aiogram's full request path (form building, request middlewares, a pydantic model of every
answer) took about a quarter of the bot's time under load, this one about half of that.

Uploads are replies too: a file goes into its record, and a file that takes seconds to make
(an export, `handlers.telegram.uploads.Upload`) is made after the commit
(`handlers.telegram.uploads`).

One module past 400 lines on purpose: recording a call, storing it and sending it after the
commit are one protocol (the record's shape is what both ends agree on), read side by side."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from http import HTTPStatus
from typing import Any, cast

import aiohttp
from aiogram import Bot
from aiogram.client.default import Default
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
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
from aiogram.types import Chat, Message
from pydantic import BaseModel
from yarl import URL

from domain.delivery import Failure, Refused, RetryAfter, Unreachable
from handlers.telegram import errors
from handlers.telegram.uploads import (
    buffered,
    file_field,
    has_upload,
    input_file,
    send_made,
    upload_fields,
)

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

# pydantic holds parametrised generic models (aiogram's `Response[Message]`, built for every
# answer it checks) only weakly: once the garbage collector took one, the next call rebuilt its
# whole schema, which cost 1.5-3.5 % of the bot's time. `ReplySession` keeps each one it used.
_RESPONSE_TYPES: dict[type[TelegramMethod[Any]], Any] = {}

current_replies: ContextVar[list[TelegramMethod[Any]] | None] = ContextVar(
    "daka_replies", default=None
)
results_unused: ContextVar[bool] = ContextVar("daka_results_unused", default=False)

Record = dict[str, Any]


_OK = Response[Any].model_construct(ok=True)


class ReplySession(AiohttpSession):
    """aiogram's aiohttp session; a sender that needs only success or failure (the replies of
    an update, the scheduler's letters) skips turning Telegram's echo into a `Message`."""

    _client: aiohttp.ClientSession | None = None

    async def create_session(self) -> aiohttp.ClientSession:
        self._client = await super().create_session()
        return self._client

    async def close(self) -> None:
        """aiogram sleeps 250 ms after closing, for TLS connections to shut down gracefully;
        a Bot API served over plain HTTP (the local one of `daka demo` and the tests) has
        none, so its session closes at once."""
        client = self._client
        if URL(self.api.base.split("{", 1)[0]).scheme == "https" or client is None:
            await super().close()
        elif not client.closed:
            await client.close()

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        kind = type(method)
        if kind not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[kind] = cast(Any, Response)[method.__returning__]
        if results_unused.get() and HTTPStatus.OK <= status_code < HTTPStatus.MULTIPLE_CHOICES:
            try:
                ok = self.json_loads(content).get("ok") is True
            except ValueError:
                ok = False
            if ok:
                return cast(Response[TelegramType], _OK)
        return super().check_response(bot, method, status_code, content)


class DeferReplies(BaseRequestMiddleware):
    """Records deferrable calls made while an update is being handled, uploads included."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        buffer = current_replies.get()
        if buffer is None or not isinstance(method, DEFERRED):
            return await make_request(bot, method)
        buffer.append(await buffered(method, bot) if has_upload(method) else method)
        # aiogram's own last step hands back the result, not a `Response`, and the caller
        # gets whatever the middlewares return: so the stand-in itself, as a real call would.
        return cast(Response[TelegramType], _stand_in(method))


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


@functools.cache
def _default_fields(kind: type[TelegramMethod[Any]]) -> dict[str, str]:
    """The fields that take a bot default when not given, and that default's name."""
    return {
        name: info.default.name
        for name, info in kind.model_fields.items()
        if isinstance(info.default, Default)
    }


_UNSET = object()


def _record(method: TelegramMethod[Any]) -> tuple[Record, bool]:
    """One call as a JSON record, and whether the record is all there is to it (False when a
    bot default sits inside a nested object: only aiogram's own path fills those in).

    A field left to the bot's default is left out (filled in when sent); one explicitly set to
    None is kept as null, so that it stays without the default after a restart too."""
    defaults = _default_fields(type(method))
    values = method.__dict__
    unresolved = {name for name in defaults if isinstance(values.get(name), Default)}
    nested = False

    def fallback(value: Any) -> Any:
        nonlocal nested
        if isinstance(value, Default):
            nested = True
            return None
        file = file_field(value)
        return value if file is None else file

    data = method.model_dump(
        mode="json", exclude_none=True, exclude=unresolved or None, fallback=fallback
    )
    record: Record = {"method": method.__api_method__, **data}
    for name in defaults:
        if values.get(name, _UNSET) is None:
            record[name] = None
    if nested:
        record = _without_none(record)
        record.update({name: None for name in defaults if values.get(name, _UNSET) is None})
    return record, not nested


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value


def dump(methods: Iterable[TelegramMethod[Any]]) -> list[Record]:
    """JSON-ready records; unset bot defaults (parse mode) stay unset, resolved when sent."""
    return [_record(method)[0] for method in methods]


def load(records: Iterable[Record]) -> list[TelegramMethod[Any]]:
    """Records back into aiogram methods (`ReplySender.send_records` needs no models)."""
    methods = []
    for record in records:
        fields = dict(record)
        kind = BY_NAME.get(str(fields.pop("method", "")))
        if kind is not None:
            for name, spec in upload_fields(fields):
                fields[name] = input_file(spec)
            methods.append(kind.model_validate(fields))
    return methods


def chat_of(replies: Iterable[TelegramMethod[Any] | Record], fallback: int) -> int:
    """The chat the replies go to (the first that names one), else `fallback`."""
    for reply in replies:
        # Models: a missing attribute costs pydantic an exception; their __dict__ does not.
        values = reply if isinstance(reply, dict) else reply.__dict__
        chat_id = values.get("chat_id")
        if isinstance(chat_id, int):
            return chat_id
    return fallback


def _as_sent(value: Any) -> Any:
    """A bot default as aiogram sends it (enum values, objects as JSON; empty ones not)."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return value or None


_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class ReplySender:
    """Sends each update's recorded replies: in order within a chat, chats concurrently; tells
    `on_sent` which updates are done so the journal can forget their replies.

    Records are posted as JSON over the bot's aiohttp session. What Telegram answers is read by
    the one Bot API error policy (`handlers.telegram.errors`): a 429 waits its `retry_after`, a
    member out of reach (blocked the bot) drops the reply, 5xx and network errors are retried
    with backoff, the harmless refusals of cosmetic calls are ignored like `TolerantRequests`
    does, any other refusal is logged; at most `max_attempts` tries in all. Uploads, and bots
    whose session or request middlewares are not the ones `bot.app.create_bot` builds, go
    through aiogram as before; an `Upload` is made first (on `database_url`), which holds up
    only the later replies of its own chat."""

    bot: Bot
    on_sent: Callable[[int], None]
    max_attempts: int = 5
    database_url: str | None = None
    _tails: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _urls: dict[str, URL] = field(default_factory=dict, init=False, repr=False)
    _defaults: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def send(self, update_id: int, chat_id: int, methods: list[TelegramMethod[Any]]) -> None:
        self._chain(update_id, chat_id, methods)

    def send_records(self, update_id: int, records: list[Record], chat_id: int = 0) -> None:
        """Send replies as the journal keeps them (`dump`), without making models of them;
        `chat_id` only when the records name none (a button's answer)."""
        self._chain(update_id, chat_of(records, chat_id), records)

    def _chain(
        self, update_id: int, chat_id: int, replies: Sequence[TelegramMethod[Any] | Record]
    ) -> None:
        previous = self._tails.get(chat_id)
        task = asyncio.create_task(self._after(previous, update_id, replies))
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

    @functools.cached_property
    def lean(self) -> bool:
        """Whether records may skip aiogram: its plain aiohttp session, and no request
        middleware but ours (whose effect on sending is reproduced here)."""
        from handlers.telegram.middlewares import TolerantRequests  # it imports this module

        session = self.bot.session
        return (
            isinstance(session, AiohttpSession)
            and type(session).make_request is AiohttpSession.make_request
            and all(isinstance(m, DeferReplies | TolerantRequests) for m in session.middleware)
        )

    async def _after(
        self,
        previous: asyncio.Task[None] | None,
        update_id: int,
        replies: Sequence[TelegramMethod[Any] | Record],
    ) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        results_unused.set(True)  # this task's own context
        for reply in replies:
            await self._deliver(reply)
        self.on_sent(update_id)

    async def _deliver(self, reply: TelegramMethod[Any] | Record) -> None:
        if isinstance(reply, dict):
            if upload_fields(reply):
                await self._upload(reply)
            elif self.lean:
                await self._post_record(reply)
            else:
                for method in load([reply]):
                    await self._call(method)
            return
        if has_upload(reply):
            await self._upload(_record(reply)[0])
            return
        if self.lean:
            record, complete = _record(reply)
            if complete:
                await self._post_record(record)
                return
        await self._call(reply)

    async def _post_record(self, record: Record) -> None:
        name = str(record.get("method", ""))
        kind = BY_NAME.get(name)
        if kind is None:
            log.warning("reply of unknown kind %r skipped", name)
            return
        payload = {k: v for k, v in record.items() if v is not None and k != "method"}
        for key, default in _default_fields(kind).items():
            if key not in record:
                value = self._default(default)
                if value is not None:
                    payload[key] = value
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        for attempt in range(1, self.max_attempts + 1):
            failure: Failure | None
            try:
                status, answer = await self._post(name, body)
            except errors.NETWORK_ERRORS as exc:
                failure = errors.failure_of(exc)
            else:
                failure = errors.failure_of_answer(status, answer)
                if failure is None:
                    return
            if not self._again(name, failure, attempt):
                return
            await asyncio.sleep(self._wait(failure, attempt))

    def _again(self, name: str, failure: Failure, attempt: int) -> bool:
        """Whether to send a refused reply again (after `_wait`); says in the log why not."""
        if isinstance(failure, Unreachable):
            return False  # the user blocked the bot; nothing to deliver
        if isinstance(failure, Refused):
            if errors.harmless(name, failure.detail):
                log.info("ignored %s: %s", name, failure.detail)
            else:
                log.warning("reply %s refused: %s", name, failure.detail)
            return False
        if attempt >= self.max_attempts:
            log.warning("reply %s dropped after %d attempts: %s", name, attempt, failure.detail)
            return False
        return True

    @staticmethod
    def _wait(failure: Failure, attempt: int) -> float:
        if isinstance(failure, RetryAfter):
            return failure.seconds
        return min(10.0, 0.5 * 2**attempt)

    async def _post(self, name: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """One request: the HTTP status and Telegram's answer ({} when it is not JSON)."""
        session = cast(AiohttpSession, self.bot.session)
        url = self._urls.get(name)
        if url is None:
            url = self._urls[name] = URL(session.api.api_url(token=self.bot.token, method=name))
        client = await session.create_session()
        timeout = self._timeout(session.timeout)
        async with client.post(url, data=body, headers=_JSON_HEADERS, timeout=timeout) as resp:
            raw = await resp.read()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        return resp.status, answer if isinstance(answer, dict) else {}

    @staticmethod
    @functools.cache
    def _timeout(seconds: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=seconds)

    def _default(self, name: str) -> Any:
        if name not in self._defaults:
            self._defaults[name] = _as_sent(self.bot.default[name])
        return self._defaults[name]

    async def _upload(self, record: Record) -> None:
        """A record with a file: made first when it is an `Upload`, then sent through aiogram
        and the made file removed (`handlers.telegram.uploads.send_made`)."""
        methods = load([record])
        if not methods:
            log.warning("reply of unknown kind %r skipped", record.get("method"))
            return
        await send_made(methods[0], chat_of([record], 0), self._call, self.database_url)

    async def _call(self, method: TelegramMethod[Any]) -> bool:
        """Through aiogram: uploads, nested bot defaults, sessions of another kind. Whether
        Telegram took it."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self.bot(method)
                return True
            except errors.API_ERRORS as exc:
                failure = errors.failure_of(exc)
            if not self._again(method.__api_method__, failure, attempt):
                return False
            await asyncio.sleep(self._wait(failure, attempt))
        return False
