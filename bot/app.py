"""Wiring: the Bot, the Dispatcher with its middlewares and routers, and the journaled polling
loop that makes a crash lose no update."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods import GetUpdates
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.fsm import DbStorage
from bot.i18n import DakaI18nMiddleware, create_i18n
from bot.middlewares import DbSessionMiddleware, TolerantRequests, VisitorMiddleware
from domain.clock import Clock, SystemClock
from domain.geo import DEFAULT_RESOLVER, Place, resolve_place
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from storage.repo import Repo

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]


def create_bot(settings: Settings) -> Bot:
    """The Bot talking to `TELEGRAM_API_URL` (Telegram, a self-hosted server, or a test fake)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(TolerantRequests())
    return Bot(
        settings.require_token(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_storage(settings: Settings, sessions: SessionFactory) -> BaseStorage:
    """FSM state in Redis when `REDIS_URL` is set, otherwise in the database."""
    if settings.redis_url:
        from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage

        return RedisStorage.from_url(
            settings.redis_url, key_builder=DefaultKeyBuilder(with_destiny=True)
        )
    return DbStorage(sessions)


def create_dispatcher(
    *,
    settings: Settings,
    sessions: SessionFactory,
    clock: Clock,
    storage: BaseStorage | None = None,
    resolve: Callable[[float, float], Place | None] | None = None,
) -> Dispatcher:
    """The Dispatcher with every router; long-lived objects go in as workflow data."""
    from handlers import build_router

    i18n = create_i18n()
    dp = Dispatcher(
        storage=storage or create_storage(settings, sessions),
        settings=settings,
        sessions=sessions,
        clock=clock,
        resolve=resolve or resolve_place,
        i18n=i18n,
    )
    dp.update.outer_middleware(DbSessionMiddleware(sessions, clock))
    dp.update.outer_middleware(VisitorMiddleware())
    DakaI18nMiddleware(i18n).setup(dp)
    dp.include_router(build_router())
    return dp


@dataclass
class JournaledPolling:
    """Long polling that writes each fetched update to the database before confirming it to
    Telegram, handles updates of one user in order and of different users concurrently, and on
    start replays whatever a crash left unhandled."""

    bot: Bot
    dp: Dispatcher
    sessions: SessionFactory
    clock: Clock
    poll_timeout: int = 25
    concurrency: int = 64
    last_seen: int = 0
    _tails: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _slots: asyncio.Semaphore | None = None

    async def run(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        replayed = await self.replay()
        if replayed:
            log.info("replayed %d updates left unhandled by the last run", replayed)
        async with self.sessions() as session:
            offset = await Repo(session).journal.next_offset()
        backoff = 1.0
        while not self._stop.is_set():
            try:
                updates = await self._fetch(offset)
            except _Stopped:
                break
            except TelegramRetryAfter as exc:
                await self._sleep(exc.retry_after)
                continue
            except (TelegramNetworkError, TelegramServerError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if not updates:
                continue
            await self._record(updates)
            offset = updates[-1].update_id + 1
            for update in updates:
                self._schedule(update)
        await self.drain()

    def stop(self) -> None:
        self._stop.set()

    async def _fetch(self, offset: int | None) -> list[Update]:
        """One long poll, abandoned at once on stop; unconfirmed updates simply come again."""
        request = GetUpdates(
            offset=offset, timeout=self.poll_timeout, allowed_updates=ALLOWED_UPDATES
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
        return fetch.result()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _record(self, updates: list[Update]) -> None:
        rows = [(u.update_id, u.model_dump_json(exclude_none=True)) for u in updates]
        async with self.sessions() as session:
            await Repo(session).journal.record(updates=rows, now=self.clock.now())
            await session.commit()

    async def replay(self) -> int:
        """Handle every journaled update not yet marked handled, in order, per user."""
        async with self.sessions() as session:
            pending = await Repo(session).journal.unhandled(limit=100_000)
            payloads = [(row.update_id, row.payload) for row in pending]
        for _, payload in payloads:
            self._schedule(Update.model_validate_json(payload, context={"bot": self.bot}))
        await self.drain()
        return len(payloads)

    def _schedule(self, update: Update) -> None:
        self.last_seen = max(self.last_seen, update.update_id)
        key = _user_key(update)
        previous = self._tails.get(key)
        task = asyncio.create_task(self._handle_after(previous, update))
        self._tails[key] = task
        task.add_done_callback(functools.partial(self._forget, key))

    def _forget(self, key: int, task: asyncio.Task[None]) -> None:
        if self._tails.get(key) is task:
            del self._tails[key]

    async def _handle_after(self, previous: asyncio.Task[None] | None, update: Update) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        assert self._slots is not None
        async with self._slots:
            try:
                await self.dp.feed_update(self.bot, update)
            except Exception:
                log.exception("update %s failed", update.update_id)

    async def drain(self) -> None:
        """Wait for every scheduled update to finish."""
        while self._tails:
            await asyncio.gather(*list(self._tails.values()), return_exceptions=True)


class _Stopped(Exception):
    """The poll was abandoned because the bot is stopping."""


def _user_key(update: Update) -> int:
    event: Any = update.event
    user = getattr(event, "from_user", None)
    if user is not None:
        return int(user.id)
    chat = getattr(event, "chat", None)
    return int(chat.id) if chat is not None else 0


async def prepare_database(engine: AsyncEngine) -> None:
    """Apply pending migrations; `daka run` does this on every start."""
    await upgrade(engine)


async def run_polling(settings: Settings, *, clock: Clock | None = None) -> None:
    """`daka run`: migrations, then journaled long polling until SIGINT/SIGTERM."""
    import signal

    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    await prepare_database(engine)
    sessions = create_session_factory(engine)
    bot = create_bot(settings)
    dp = create_dispatcher(settings=settings, sessions=sessions, clock=clock)
    await asyncio.to_thread(DEFAULT_RESOLVER.load)  # the place table, before the first update
    me = await bot.get_me()
    log.info("polling as @%s", me.username)
    await bot.delete_webhook(drop_pending_updates=False)
    from handlers.common import install_commands

    await install_commands(bot)
    poller = JournaledPolling(bot=bot, dp=dp, sessions=sessions, clock=clock)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, poller.stop)
    from scheduler.jobs import SchedulerService

    service = SchedulerService(bot, sessions, clock, dp["i18n"], settings.send_rate)
    dp["outbox_wake"] = service.sender.wake
    try:
        await dp.emit_startup(bot=bot)
        scheduler, sending = service.start()
        try:
            await poller.run()
        finally:
            await service.stop(scheduler, sending)
    finally:
        await dp.emit_shutdown(bot=bot)
        await dp.storage.close()
        await bot.session.close()
        await engine.dispose()


async def run_scheduler(settings: Settings, *, clock: Clock | None = None) -> None:
    """`daka scheduler`: rounds and the sender without polling, for split deployments."""
    import signal

    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    await prepare_database(engine)
    sessions = create_session_factory(engine)
    bot = create_bot(settings)
    from scheduler.jobs import SchedulerService

    service = SchedulerService(bot, sessions, clock, create_i18n(), settings.send_rate)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    scheduler, sending = service.start()
    try:
        await stopped.wait()
    finally:
        await service.stop(scheduler, sending)
        await bot.session.close()
        await engine.dispose()
