"""Wiring: the Bot, the Dispatcher with its middlewares and routers, and the journaled polling
loop that makes a crash lose no update."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import ClientDecodeError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods import GetUpdates
from aiogram.types import Update
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.shims.heap import settle_heap
from domain.clock import Clock, SystemClock
from domain.delivery import TELEGRAM, RetryAfter, Transient
from domain.geo import DEFAULT_RESOLVER, Place, resolve_place
from domain.i18n import create_translator
from handlers.telegram.errors import API_ERRORS, failure_of
from handlers.telegram.fsm import AfterCommit, DbStorage, redis_forgetter, redis_storage
from handlers.telegram.i18n import LanguageMiddleware
from handlers.telegram.middlewares import (
    DbSessionMiddleware,
    PrivateChatsOnly,
    TolerantRequests,
    VisitorMiddleware,
)
from handlers.telegram.replies import DeferReplies, ReplySession
from handlers.telegram.updates import Unreadable, UpdateProcessor, read_update
from scheduler.couriers import Courier
from storage.db import (
    SessionFactory,
    create_engine,
    create_session_factory,
    database_unavailable,
)
from storage.migrate import upgrade
from storage.repo import Repo
from storage.repos.privacy import Forget

if TYPE_CHECKING:
    from bot.wecom import WeComServer

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]
TELEGRAM_SEND_RATE = 25.0  # the default of `SEND_RATE`
BATCH_LIMIT = 100  # updates handled in one transaction (Telegram's getUpdates maximum)


def create_bot(settings: Settings) -> Bot:
    """The Bot talking to `TELEGRAM_API_URL` (Telegram, a self-hosted server, or a test fake)."""
    session = ReplySession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(DeferReplies())
    session.middleware(TolerantRequests())
    return Bot(
        settings.require_token(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_couriers(bot: Bot, *, send_rate: float = TELEGRAM_SEND_RATE) -> dict[str, Courier]:
    """The outbox sender's couriers by channel: Telegram's, through `bot`, at `send_rate`
    messages a second (`SEND_RATE`). Their names are also the channels letters are addressed
    on: `channels_of`."""
    from handlers.telegram.courier import TELEGRAM_PACE, TelegramCourier

    pace = dataclasses.replace(TELEGRAM_PACE, rate_per_second=send_rate)
    return {TELEGRAM: TelegramCourier(bot, pace)}


@contextlib.asynccontextmanager
async def deployment_couriers(
    bot: Bot | None, settings: Settings, sessions: SessionFactory
) -> AsyncIterator[dict[str, Courier]]:
    """Every channel's courier this deployment has: Telegram's (when given a bot), and WeCom's
    when the `WECOM_*` settings are there, so that one scheduler reminds and alerts people on
    both (a round runs once, in whichever scheduler claims it first). WeCom's HTTP session
    lives as long as the block."""
    from bot.wecom import shared_counts, wecom_courier

    couriers = create_couriers(bot, send_rate=settings.send_rate) if bot is not None else {}
    if settings.wecom_corp_id is None:
        yield couriers
        return
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as closing:
        wecom = wecom_courier(settings, sessions, http, redis=shared_counts(settings, closing))
        if wecom is not None:
            couriers[wecom.channel] = wecom
        yield couriers


def channels_of(couriers: Mapping[str, Courier]) -> frozenset[str]:
    """The channels this deployment reaches people on: those it has a courier for. Rounds,
    alerts and nudges address letters to people's identities on these channels only (a letter
    for another channel would wait in the outbox for a courier that never comes)."""
    return frozenset(couriers)


def create_storage(settings: Settings, sessions: SessionFactory) -> BaseStorage:
    """FSM state in Redis when `REDIS_URL` is set (written once the update commits), otherwise
    in the database (read afresh by every batch, see `DbStorage`)."""
    if settings.redis_url:
        return AfterCommit(redis_storage(settings.redis_url))
    return DbStorage(sessions)


def conversation_forgetter(settings: Settings) -> Forget | None:
    """Erasure's `forget`: Telegram's state in Redis when `REDIS_URL` is set (the database's
    conversations are erased with the answers)."""
    return redis_forgetter(settings.redis_url) if settings.redis_url else None


def create_dispatcher(
    *,
    settings: Settings,
    sessions: SessionFactory,
    clock: Clock,
    storage: BaseStorage | None = None,
    resolve: Callable[[float, float], Place | None] | None = None,
    channels: Collection[str] = (),
) -> Dispatcher:
    """The Dispatcher with every router; long-lived objects go in as workflow data.
    `channels` are the deployment's (`channels_of`), which alerts and nudges are addressed on;
    none given: only Telegram, where the person pressing or writing is."""
    from handlers.telegram import build_router

    i18n = create_translator()
    dp = Dispatcher(
        storage=storage or create_storage(settings, sessions),
        disable_fsm=True,  # registered below, after the session: FSM reads join its transaction
        settings=settings,
        sessions=sessions,
        clock=clock,
        resolve=resolve or resolve_place,
        i18n=i18n,
        channels=frozenset(channels),
    )
    dp.update.outer_middleware(PrivateChatsOnly())  # first: a group gets nothing further
    dp.update.outer_middleware(DbSessionMiddleware())
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(VisitorMiddleware())
    LanguageMiddleware(i18n).setup(dp)
    from handlers.telegram.common import CommandMenu

    menu = CommandMenu()  # after the language is known
    dp.message.outer_middleware(menu)
    dp.callback_query.outer_middleware(menu)
    dp.include_router(build_router())
    return dp


@dataclass
class JournaledPolling:
    """Long polling that confirms an update to Telegram only after handling it: each batch
    from getUpdates is handled and committed by the `UpdateProcessor`, and only then is the
    next getUpdates sent, which confirms the batch."""

    bot: Bot
    dp: Dispatcher
    sessions: SessionFactory
    clock: Clock
    poll_timeout: int = 25
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.processor = UpdateProcessor(self.bot, self.dp, self.sessions, self.clock)

    @property
    def last_handled(self) -> int:
        return self.processor.last_handled

    async def run(self) -> None:
        await self.processor.start()
        try:
            await self._run()
        finally:
            await self.processor.close()

    async def _run(self) -> None:
        offset = await self._resume_offset()
        backoff = 1.0
        while not self._stop.is_set():
            try:
                updates, unreadable = await self._fetch(offset)
            except _Stopped:
                break
            except API_ERRORS as exc:
                failure = failure_of(exc)
                if isinstance(failure, RetryAfter):
                    await self._sleep(failure.seconds)
                    continue
                if not isinstance(failure, Transient):  # the token refused, say: stop
                    raise
                log.warning("getUpdates failed (%s); retrying in %.0f s", failure.detail, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if updates:
                await self.processor.handle(updates)
            if unreadable:
                await self.processor.skip(unreadable)
            seen = [u.update_id for u in updates]
            seen += [u.update_id for u in unreadable if u.update_id is not None]
            if seen:
                offset = max(seen) + 1

    async def _resume_offset(self) -> int | None:
        """Where the journal says polling stopped; waits for a database that is not up yet."""
        delay = 1.0
        while True:
            try:
                async with self.sessions() as session:
                    return await Repo(session).journal.next_offset()
            except Exception as exc:
                if not database_unavailable(exc) or self._stop.is_set():
                    raise
                log.warning("database unavailable (%s); retrying in %.0f s", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 30.0)

    def stop(self) -> None:
        self._stop.set()

    async def handle(self, updates: list[Update]) -> None:
        await self.processor.handle(updates)

    async def idle(self) -> None:
        """Wait until the replies of everything handled so far have been sent."""
        await self.processor.idle()

    async def _fetch(self, offset: int | None) -> tuple[list[Update], list[Unreadable]]:
        """One long poll, abandoned at once on stop; unconfirmed updates simply come again.
        An update that aiogram's models cannot hold fails the whole answer's parsing: then
        each is read on its own, and the unreadable ones are returned apart."""
        request = GetUpdates(
            offset=offset,
            limit=BATCH_LIMIT,
            timeout=self.poll_timeout,
            allowed_updates=ALLOWED_UPDATES,
        )
        fetch = asyncio.ensure_future(self.bot(request, request_timeout=self.poll_timeout + 10))
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            raise _Stopped
        try:
            return fetch.result(), []
        except ClientDecodeError as exc:
            body = exc.data
            if not (isinstance(body, dict) and isinstance(body.get("result"), list)):
                raise
            found = [read_update(raw, self.bot) for raw in body["result"]]
            return (
                [u for u in found if isinstance(u, Update)],
                [u for u in found if isinstance(u, Unreadable)],
            )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)


class _Stopped(Exception):
    """The poll was abandoned because the bot is stopping."""


async def prepare_database(engine: AsyncEngine) -> None:
    """Apply pending migrations; `daka run` does this on every start."""
    await upgrade(engine)


async def run_polling(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
    wecom_at: tuple[str, int] | None = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """`daka run`: migrations, then journaled long polling until SIGINT/SIGTERM (or until
    `stop` is set, for a caller that owns the signals: `daka demo`). With `wecom_at` (host,
    port) the WeCom app's callbacks are served there too, beside the polling, with one
    scheduler and one sender holding both couriers; `ready` is told WeCom's port."""
    clock = clock or SystemClock()
    bot = create_bot(settings)
    engine = create_engine(settings.database_url)
    try:
        me = await bot.me()  # Telegram answers and takes the token, before any migration (cached:
        # the line that sends groups to the private chat names the bot)
        await prepare_database(engine)
        sessions = create_session_factory(engine)
        async with contextlib.AsyncExitStack() as stack:
            wecom: _WeComBeside | None = None
            if wecom_at is None:
                couriers = await stack.enter_async_context(
                    deployment_couriers(bot, settings, sessions)
                )
            else:
                from bot.wecom import WeComServer, shared_counts

                http = await stack.enter_async_context(aiohttp.ClientSession())
                redis = shared_counts(settings, stack)
                server = await WeComServer.build(settings, engine, sessions, clock, http, redis)
                couriers = create_couriers(bot, send_rate=settings.send_rate)
                wecom_courier = server.courier()  # on the callback server's own API client
                couriers[wecom_courier.channel] = wecom_courier
                wecom = _WeComBeside(server, *wecom_at, ready)
            await _poll(
                bot,
                engine,
                sessions,
                couriers,
                me.username,
                settings,
                clock,
                metrics_port,
                stop,
                wecom=wecom,
            )
    finally:
        await bot.session.close()
        await engine.dispose()


@dataclass
class _WeComBeside:
    """WeCom's callback server run beside the polling, and where it listens."""

    server: WeComServer
    host: str
    port: int
    ready: Callable[[int], None] | None


async def _poll(
    bot: Bot,
    engine: AsyncEngine,
    sessions: SessionFactory,
    couriers: dict[str, Courier],
    username: str | None,
    settings: Settings,
    clock: Clock,
    metrics_port: int | None,
    stop: asyncio.Event | None = None,
    wecom: _WeComBeside | None = None,
) -> None:
    """The dispatcher, the scheduler and the poller (and WeCom's callbacks, when given) on a
    bot and a database that are ready."""
    import signal

    dp = create_dispatcher(
        settings=settings, sessions=sessions, clock=clock, channels=channels_of(couriers)
    )
    await asyncio.to_thread(DEFAULT_RESOLVER.load)  # the place table, before the first update
    log.info("polling as @%s (aiogram models built %s)", username, _model_building())
    await bot.delete_webhook(drop_pending_updates=False)
    from handlers.telegram.common import install_commands

    await install_commands(bot)
    poller = JournaledPolling(bot=bot, dp=dp, sessions=sessions, clock=clock)
    watcher: asyncio.Task[Any] | None = None
    if stop is None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, poller.stop)
    else:
        watcher = asyncio.create_task(stop.wait())
        watcher.add_done_callback(lambda _: poller.stop())
    from scheduler.jobs import SchedulerService

    service = SchedulerService(
        couriers, sessions, clock, dp["i18n"], conversation_forgetter(settings)
    )
    dp["outbox_wake"] = service.sender.wake
    ops = await _serve_ops(engine, dp.storage, metrics_port)
    settle_heap()
    try:
        await dp.emit_startup(bot=bot)
        if wecom is not None:
            wecom.server.wake.target = service.sender.wake
            await wecom.server.open()
        scheduler, sending = service.start()
        try:
            if wecom is not None:
                bound = await wecom.server.listen(wecom.host, wecom.port)
                if wecom.ready is not None:
                    wecom.ready(bound)
            await poller.run()
        finally:
            if wecom is not None:
                await wecom.server.close()
            await service.stop(scheduler, sending)
    finally:
        if watcher is not None:
            watcher.cancel()
        if ops is not None:
            await ops.cleanup()
        await dp.emit_shutdown(bot=bot)
        await dp.storage.close()


async def run_scheduler(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metrics_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """`daka scheduler`: rounds and the sender without polling, for split deployments; on
    Telegram when `BOT_TOKEN` is set, on WeCom when the `WECOM_*` settings are (a WeCom-only
    deployment has no bot). Runs until SIGINT/SIGTERM, or until `stop` is set when given."""
    import signal

    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    await prepare_database(engine)
    sessions = create_session_factory(engine)
    bot = create_bot(settings) if settings.serves_telegram else None
    from scheduler.jobs import SchedulerService

    closing = contextlib.AsyncExitStack()
    couriers = await closing.enter_async_context(deployment_couriers(bot, settings, sessions))
    service = SchedulerService(
        couriers, sessions, clock, create_translator(), conversation_forgetter(settings)
    )
    stopped = stop or asyncio.Event()
    if stop is None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
    ops = await _serve_ops(engine, None, metrics_port)
    settle_heap()
    scheduler, sending = service.start()
    try:
        await stopped.wait()
    finally:
        await service.stop(scheduler, sending)
        if ops is not None:
            await ops.cleanup()
        await closing.aclose()
        if bot is not None:
            await bot.session.close()
        await engine.dispose()


async def _serve_ops(
    engine: AsyncEngine, storage: BaseStorage | None, port: int | None
) -> web.AppRunner | None:
    """`/healthz` and `/metrics` on `port`, when asked for."""
    if port is None:
        return None
    from bot.web import serve_ops

    return await serve_ops(engine, getattr(storage, "redis", None), port)


def _model_building() -> str:
    """For the start-up line; the shim's reason repeats its line from before logging was set."""
    from bot.shims.lazy_aiogram import LAZY, SHIM

    if LAZY:
        return "on first use"
    return f"at import: {SHIM.reason}" if SHIM.reason else "at import"
