"""Webhook mode and the operations endpoints.

`daka webhook` serves Telegram's deliveries on the path of `--url` (or `WEBHOOK_PATH`), `/healthz`
and `/metrics`. Any
number of replicas may run behind a load balancer: each delivery is handled and committed by
the same journaled `UpdateProcessor` as long polling (a delivery Telegram repeats is skipped),
and one member's updates are handled one at a time across replicas by aiogram's event
isolation (a Redis lock with `REDIS_URL`; in-process otherwise). The polling bot and the
scheduler can serve `/healthz` and `/metrics` on `METRICS_PORT`."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from aiogram import Bot
from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.fsm.storage.redis import RedisEventIsolation
from aiogram.types import Update
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SettingError, Settings
from domain import metrics
from domain.clock import Clock, SystemClock
from handlers.telegram.updates import Unreadable, UpdateProcessor, read_update, user_key
from storage.db import create_engine, create_session_factory

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHECK_TIMEOUT = 2.0
RESEND_AFTER = timedelta(minutes=1)  # a reply older than this was lost by a replica that died
OPS_PATHS = ("/healthz", "/metrics")


class Probe:
    """What `/healthz` and `/metrics` look at: the database, and Redis when it is used."""

    def __init__(self, engine: AsyncEngine, redis: Any | None = None) -> None:
        self.engine = engine
        self.sessions = create_session_factory(engine)
        self.redis = redis

    async def health(self) -> dict[str, str]:
        checks = {"database": await self._check(self._database)}
        if self.redis is not None:
            checks["redis"] = await self._check(self.redis.ping)
        return checks

    async def _database(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @staticmethod
    async def _check(probe: Callable[[], Awaitable[Any]]) -> str:
        try:
            await asyncio.wait_for(probe(), timeout=CHECK_TIMEOUT)
        except Exception as exc:
            return f"unavailable ({type(exc).__name__})"
        return "ok"

    async def refresh_gauges(self) -> None:
        from storage.schedules import OutboxRepo

        async def depth() -> int:
            async with self.sessions() as session:
                return await OutboxRepo(session).pending_count()

        try:
            metrics.OUTBOX_DEPTH.set(await asyncio.wait_for(depth(), timeout=CHECK_TIMEOUT))
        except Exception as exc:
            log.debug("outbox depth unknown: %s", exc)

    async def on_healthz(self, _request: web.Request) -> web.Response:
        checks = await self.health()
        healthy = all(value == "ok" for value in checks.values())
        return web.json_response(
            {"status": "ok" if healthy else "unavailable", **checks},
            status=200 if healthy else 503,
        )

    async def on_metrics(self, _request: web.Request) -> web.Response:
        await self.refresh_gauges()
        body, content_type = metrics.exposition()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self.on_healthz)
        app.router.add_get("/metrics", self.on_metrics)


@dataclass
class WebhookHandler:
    """Telegram's deliveries: checked, parsed, then handled in batches — group commit.

    Deliveries that arrive while a batch is being handled wait for the next one, which takes
    them all (up to `max_batch`): one transaction, one journal look-up, one visitor load and
    one commit for the lot, as in long polling. Each delivery is answered 200 once its batch has
    committed, so Telegram delivers again whatever a crash cut short. The members of a batch are
    locked (in Redis with `REDIS_URL`) for the whole batch, so another replica never handles one
    of them at the same time."""

    bot: Bot
    processor: UpdateProcessor
    secret: str
    isolation: BaseEventIsolation
    max_batch: int = 100
    _waiting: list[tuple[Update, asyncio.Future[None]]] = field(default_factory=list)
    _flushing: asyncio.Task[None] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook delivery with a wrong or missing secret refused")
            return web.Response(status=401, text="unauthorized")
        try:
            update = read_update(await request.json(), self.bot)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        if isinstance(update, Unreadable):
            await self.processor.skip([update])  # acknowledged: Telegram would send it forever
            return web.Response(status=200)
        handled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((update, handled))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await asyncio.shield(handled)  # a dropped connection does not cancel the batch
        return web.Response(status=200)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
            updates = [update for update, _ in batch]
            try:
                async with contextlib.AsyncExitStack() as locks:
                    for user in sorted({user_key(u) for u in updates}):  # one order: no deadlock
                        key = StorageKey(bot_id=self.bot.id, chat_id=user, user_id=user)
                        await locks.enter_async_context(self._member(key))
                    await self.processor.handle(updates)
            except Exception as exc:
                log.exception("a batch of %d deliveries failed", len(batch))
                for _, handled in batch:
                    if not handled.done():
                        handled.set_exception(exc)
            else:
                for _, handled in batch:
                    if not handled.done():
                        handled.set_result(None)

    @contextlib.asynccontextmanager
    async def _member(self, key: StorageKey) -> AsyncIterator[None]:
        """The member's lock; one that expired meanwhile (a batch longer than the lock's
        timeout) is reported, not raised: the batch has committed by then."""
        lock = self.isolation.lock(key)
        await lock.__aenter__()
        try:
            yield
        finally:
            try:
                await lock.__aexit__(None, None, None)
            except Exception as exc:
                log.warning("a member's lock had expired before their batch ended: %s", exc)


def webhook_target(settings: Settings, public_url: str | None) -> tuple[str | None, str]:
    """The URL Telegram is given and the path served, which must be the path it names.

    A `--url` with a path is served on that path; a `--url` that is only the site gets
    `WEBHOOK_PATH` appended; no `--url` (a replica with `--no-set-webhook`) serves
    `WEBHOOK_PATH`. A `WEBHOOK_PATH` set on purpose that names another path than `--url` is
    refused: one of them is a mistake, and Telegram would get 404 for every delivery. So is a
    `--url` nothing can deliver to (not http(s), no host), and a path aiohttp would read as a
    pattern (`{name}`) or refuse to route."""
    if public_url is None:
        return None, settings.webhook_path
    parts = _https_url(public_url)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path=settings.webhook_path)), settings.webhook_path
    path = unquote(parts.path)  # what aiohttp matches a request's path against
    if not path.startswith("/") or {"{", "}"} & set(path):
        raise SettingError(
            "--url", f"{public_url} is invalid: its path must start with / and have no {{ or }}"
        )
    if "webhook_path" in settings.model_fields_set and path != settings.webhook_path:
        raise SettingError(
            "WEBHOOK_PATH",
            f"is {settings.webhook_path} but --url {public_url} delivers to {path}: "
            "leave WEBHOOK_PATH unset or make the two agree",
        )
    if path in OPS_PATHS:
        raise SettingError("--url", f"{public_url} is invalid: {path} serves the operations")
    return public_url, path


def _https_url(public_url: str) -> SplitResult:
    """`--url` read as a Bot API server needs it: a scheme and a host to deliver to. Telegram's
    own servers deliver only to https; a local Bot API server (`TELEGRAM_API_URL`) and the tests'
    fake one also deliver to http."""
    refused = SettingError(
        "--url", f"{public_url} is invalid: give an https URL, like https://bot.example.org"
    )
    try:
        parts = urlsplit(public_url)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError:
        raise refused from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise refused
    return parts


async def run_webhook(
    settings: Settings,
    *,
    host: str,
    port: int,
    url: str | None,
    set_webhook: bool = True,
    with_scheduler: bool = False,
    clock: Clock | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """`daka webhook`: migrations, then serve deliveries until SIGINT/SIGTERM (or `stop`);
    `ready` is told the port once deliveries are accepted."""
    from bot.app import (
        ALLOWED_UPDATES,
        channels_of,
        conversation_forgetter,
        create_bot,
        create_dispatcher,
        create_storage,
        deployment_couriers,
        prepare_database,
        settle_heap,
    )
    from domain.geo import DEFAULT_RESOLVER

    secret = settings.require_webhook_secret()
    public_url, path = webhook_target(settings, url)
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as closing:
        bot = create_bot(settings)
        closing.push_async_callback(bot.session.close)
        engine = create_engine(settings.database_url)
        closing.push_async_callback(engine.dispose)
        # Telegram answers and takes the token before any migration, as for `daka run`; the
        # answer is cached, so no update waits on Telegram to learn the bot's name.
        await bot.me()
        await prepare_database(engine)
        sessions = create_session_factory(engine)
        storage = create_storage(settings, sessions)
        redis = getattr(storage, "redis", None)
        # Shares the storage's Redis connection pool, which `dp.storage.close()` closes.
        isolation: BaseEventIsolation = (
            RedisEventIsolation(redis) if redis is not None else SimpleEventIsolation()
        )
        # The deployment's couriers: this process sends with them only `--with-scheduler`,
        # but their channels are where its alerts and nudges are addressed either way.
        couriers = await closing.enter_async_context(deployment_couriers(bot, settings, sessions))
        dp = create_dispatcher(
            settings=settings,
            sessions=sessions,
            clock=clock,
            storage=storage,
            channels=channels_of(couriers),
        )
        await asyncio.to_thread(DEFAULT_RESOLVER.load)
        processor = UpdateProcessor(bot, dp, sessions, clock)
        probe = Probe(engine, redis)
        app = web.Application()
        deliveries = WebhookHandler(bot, processor, secret, isolation)
        app.router.add_post(path, deliveries.handle)
        probe.add_routes(app)
        service = None
        stopped = stop or asyncio.Event()
        if stop is None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        try:
            await dp.emit_startup(bot=bot)
            await processor.start(resend_older_than=RESEND_AFTER)
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = _bound_port(runner, port)
            log.info("webhook server on %s:%d%s", host, bound, path)
            if set_webhook:
                if not public_url:
                    raise ValueError("--url is required unless --no-set-webhook is given")
                from handlers.telegram.common import install_commands

                await bot.set_webhook(
                    public_url,
                    secret_token=secret,
                    allowed_updates=ALLOWED_UPDATES,
                    drop_pending_updates=False,
                )
                await install_commands(bot)
                log.info("webhook set to %s", public_url)
            if with_scheduler:
                from scheduler.jobs import SchedulerService

                service = SchedulerService(
                    couriers, sessions, clock, dp["i18n"], conversation_forgetter(settings)
                )
                dp["outbox_wake"] = service.sender.wake
                scheduling = service.start()
            settle_heap()
            if ready is not None:
                ready(bound)
            await stopped.wait()
        finally:
            log.info("webhook server stopping")
            await runner.cleanup()  # stops accepting and lets deliveries in flight finish
            if service is not None:
                await service.stop(*scheduling)
            await processor.close()
            await dp.emit_shutdown(bot=bot)
            await dp.storage.close()


def _bound_port(runner: web.AppRunner, fallback: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return fallback


async def serve_ops(engine: AsyncEngine, redis: Any | None, port: int) -> web.AppRunner:
    """`/healthz` and `/metrics` on their own port, for the polling bot and the scheduler."""
    app = web.Application()
    Probe(engine, redis).add_routes(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    log.info("health and metrics on port %d", port)
    return runner
