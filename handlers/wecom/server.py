"""The app's callback URL (接收消息): WeCom's GET verification and its encrypted POSTs.

A POST is verified, decrypted, parsed and deduplicated, then acknowledged with an empty 200 at
once: WeCom waits 5 s and tries 3 times in all, and the answer goes out later through the API.
The event is handed to the injected `handle`, in a task of its own by default; with
`before_ack=True` it is awaited before the 200 (for a fast journal write: a failure answers 500
and WeCom tries again; a retry that comes while the first try is still being taken answers as
that one does). A callback that is not WeCom's for this app (signature, corp id), or not
readable (XML, base64, padding, fields), is refused with a 4xx and one log line, and nothing is
handled. A handler's exception is a bug: logged with its traceback, never answered to WeCom."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiohttp import web

from domain.clock import Clock
from handlers.wecom.crypto import BadCorpId, BadSignature, CallbackError, WeComCrypto
from handlers.wecom.messages import Event, dedupe_key, parse

log = logging.getLogger(__name__)

Handle = Callable[[Event], Awaitable[None]]
MAX_BODY: Final = 64 * 1024  # a callback is well under 2 KB
SEEN_FOR: Final = 600.0  # seconds a key is remembered: WeCom's retries come within ~15 s


TIMESTAMP_WINDOW = 300.0  # seconds a signed callback may be early or late


class Seen(Protocol):
    """Which callbacks were already taken (a journal can be one)."""

    async def first(self, key: str) -> bool:
        """True the first time `key` is offered (and it is remembered), False afterwards."""
        ...

    async def forget(self, key: str) -> None:
        """Take `key` back: its handling failed before the acknowledgement."""
        ...


class MemorySeen:
    """Seen keys in memory, for `SEEN_FOR` seconds and at most `capacity` of them."""

    def __init__(
        self,
        capacity: int = 100_000,
        ttl: float = SEEN_FOR,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._monotonic = monotonic

    async def first(self, key: str) -> bool:
        now = self._monotonic()
        while self._keys:
            oldest, at = next(iter(self._keys.items()))
            if now - at < self._ttl and len(self._keys) < self._capacity:
                break
            del self._keys[oldest]
        if key in self._keys:
            return False
        self._keys[key] = now
        return True

    async def forget(self, key: str) -> None:
        self._keys.pop(key, None)


class CallbackEndpoint:
    """One app's callback endpoint: mount `routes(path)` on an aiohttp application."""

    def __init__(
        self,
        crypto: WeComCrypto,
        handle: Handle,
        *,
        seen: Seen | None = None,
        before_ack: bool = False,
        clock: Clock | None = None,
        window: float = TIMESTAMP_WINDOW,
    ) -> None:
        self.crypto = crypto
        self._clock = clock
        self._window = window
        self._handle = handle
        self._seen = seen if seen is not None else MemorySeen()
        self._before_ack = before_ack
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: dict[str, asyncio.Future[bool] | None] = {}
        self.refused = 0
        self.duplicates = 0

    def routes(self, path: str) -> list[web.RouteDef]:
        return [web.get(path, self.verify), web.post(path, self.receive)]

    async def verify(self, request: web.Request) -> web.Response:
        """GET: answer the decrypted echostr as plain text (no quotes, BOM or newline)."""
        query = request.query
        try:
            # "+" in a base64 echostr that was not URL-encoded arrives as a space.
            echostr = query.get("echostr", "").replace(" ", "+")
            plain = self.crypto.verify_url(*self._signed(request), echostr)
        except CallbackError as exc:
            return self._refuse(request, exc)
        return web.Response(body=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        """POST: verify, decrypt, parse, dedupe; then an empty 200 at once."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return self._refuse(request, CallbackError("body too large"), status=413)
        content = request.content
        body = b""
        while not content.at_eof():  # a callback's body has come whole: one read, no wait
            body += await content.readany()
            if len(body) > MAX_BODY:
                return self._refuse(request, CallbackError("body too large"), status=413)
        try:
            event = parse(self.crypto.open(body, *self._signed(request)))
        except CallbackError as exc:
            return self._refuse(request, exc)
        key = dedupe_key(event)
        if key in self._inflight:  # WeCom's retry while its first try is still being taken
            self.duplicates += 1
            first = self._inflight[key]
            if first is None:
                first = self._inflight[key] = asyncio.get_running_loop().create_future()
            taken = await self._await_first(first)
            return web.Response(status=200 if taken else 500, text="")
        if not await self._seen.first(key):
            self.duplicates += 1
            return web.Response(text="")
        if self._before_ack:
            taken = await self._take(key, event)
            return web.Response(status=200 if taken else 500, text="")
        task = asyncio.create_task(self._run(key, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(text="")

    async def drain(self) -> None:
        """Wait for the events being handled (at shutdown; in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _take(self, key: str, event: Event) -> bool:
        """Hand the event over before the ack; on failure it is forgotten, so that WeCom's
        next try (answered 500 now) is taken afresh."""
        self._inflight[key] = None  # a future once a retry waits for it
        taken = False
        try:
            await self._handle(event)
            taken = True
        except Exception:
            log.exception("wecom callback %s: the handler failed before the ack", key)
        finally:
            if not taken:
                await self._seen.forget(key)
            done = self._inflight.pop(key)
            if done is not None:
                done.set_result(taken)
        return taken

    async def _await_first(self, first: asyncio.Future[bool]) -> bool:
        """A retry answers as its first try does, once that is known."""
        return await asyncio.shield(first)

    async def _run(self, key: str, event: Event) -> None:
        try:
            await self._handle(event)
        except Exception:
            log.exception("wecom callback %s: the handler failed", key)

    def _signed(self, request: web.Request) -> tuple[str, str, str]:
        query = request.query
        values = tuple(query.get(name, "") for name in ("msg_signature", "timestamp", "nonce"))
        if not all(values):
            raise BadSignature("msg_signature, timestamp or nonce missing")
        if self._clock is not None:
            # Signed, but not otherwise limited: a callback captured (an http URL) could be
            # replayed once its journal key is pruned. WeCom signs as it sends.
            try:
                skew = abs(self._clock.now().timestamp() - int(values[1]))
            except ValueError:
                raise BadSignature("timestamp is not a number") from None
            if skew > self._window:
                raise BadSignature(f"timestamp {int(skew)} s away from now")
        return values[0], values[1], values[2]

    def _refuse(
        self, request: web.Request, problem: CallbackError, status: int | None = None
    ) -> web.Response:
        if status is None:
            status = 403 if isinstance(problem, BadSignature | BadCorpId) else 400
        self.refused += 1
        log.warning(
            "wecom callback %s from %s refused (%d): %s: %s",
            request.method,
            request.remote,
            status,
            type(problem).__name__,
            problem,
        )
        return web.Response(status=status, text="")
