"""Wiring: the Bot, the Dispatcher with its middlewares and routers, and the journaled polling
loop that makes a crash lose no update."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.fsm.storage.base import BaseStorage
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from bot.context import Batch, current_batch
from bot.fsm import DbStorage
from bot.i18n import DakaI18nMiddleware, create_i18n
from bot.middlewares import (
    DbSessionMiddleware,
    TolerantRequests,
    VisitorMiddleware,
    load_visitors,
)
from bot.replies import (
    DeferReplies,
    ReplySender,
    ReplySession,
    chat_of,
    current_replies,
    dump,
    load,
)
from domain.clock import Clock, SystemClock
from domain.geo import DEFAULT_RESOLVER, Place, resolve_place
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from storage.repo import Repo

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "callback_query"]
BATCH_LIMIT = 100  # updates handled in one transaction (Telegram's getUpdates maximum)
MARK_INTERVAL = 0.05


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
        disable_fsm=True,  # registered below, after the session: FSM reads join its transaction
        settings=settings,
        sessions=sessions,
        clock=clock,
        resolve=resolve or resolve_place,
        i18n=i18n,
    )
    dp.update.outer_middleware(DbSessionMiddleware(sessions, clock))
    dp.update.outer_middleware(dp.fsm)
    dp.update.outer_middleware(VisitorMiddleware())
    DakaI18nMiddleware(i18n).setup(dp)
    dp.include_router(build_router())
    return dp


@dataclass
class JournaledPolling:
    """Long polling that confirms an update to Telegram only after handling it.

    Each batch from getUpdates is handled in one database transaction: handlers' writes, FSM
    steps and the journal rows (with the replies each update produced) commit together; only
    then is the next getUpdates sent, which confirms the batch, and the replies go out. A crash
    before the commit loses nothing (Telegram delivers the batch again; nothing of it was
    stored), a crash after it loses no reply (they are in the journal and sent on start), and an
    update delivered twice is skipped by the journal. A handler that fails makes the batch roll
    back and its updates run one by one, so the failure costs only its own update."""

    bot: Bot
    dp: Dispatcher
    sessions: SessionFactory
    clock: Clock
    poll_timeout: int = 25
    last_handled: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _replied: list[int] = field(default_factory=list)
    replies: ReplySender | None = None

    async def run(self) -> None:
        self.replies = ReplySender(self.bot, self._replied.append)
        marking = asyncio.create_task(self._keep_marking())
        try:
            await self._run()
        finally:
            self._stop.set()
            await marking
        await self.replies.drain()
        await self._mark_replied()

    async def _keep_marking(self) -> None:
        """Record sent replies every few hundredths of a second, so that a crash repeats only
        the replies of the last moments."""
        while not self._stop.is_set():
            await self._sleep(MARK_INTERVAL)
            if self._replied:
                try:
                    await self._mark_replied()
                except Exception:
                    log.exception("could not record sent replies; will retry")

    async def _run(self) -> None:
        assert self.replies is not None
        resent = await self.resend_replies()
        if resent:
            log.info("sent the replies of %d updates a crash had held back", resent)
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
            except (TelegramNetworkError, TelegramServerError, TelegramConflictError) as exc:
                log.warning("getUpdates failed (%s); retrying in %.0f s", exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if updates:
                await self.handle(updates)
                offset = updates[-1].update_id + 1

    def stop(self) -> None:
        self._stop.set()

    async def handle(self, updates: list[Update]) -> None:
        """Handle a batch; on a handler failure, again one update at a time."""
        if await self._batch(updates) or len(updates) == 1:
            return
        for update in updates:
            await self._batch([update])

    async def _batch(self, updates: list[Update]) -> bool:
        storage = self.dp.fsm.storage
        results: list[tuple[Update, list[TelegramMethod[Any]]]] = []
        async with self.sessions() as session:
            repo = Repo(session)
            done = await repo.journal.handled_among(update_ids=[u.update_id for u in updates])
            fresh = [u for u in updates if u.update_id not in done]
            users = [_user_key(u) for u in fresh]
            batch = Batch(session=session, visitors=await load_visitors(repo, users))
            batch_token = current_batch.set(batch)
            try:
                for update in fresh:
                    buffer: list[TelegramMethod[Any]] = []
                    replies_token = current_replies.set(buffer)
                    try:
                        await self.dp.feed_update(self.bot, update)
                    except Exception:
                        log.exception("update %s failed", update.update_id)
                        batch.failed = True
                    finally:
                        current_replies.reset(replies_token)
                    if batch.failed and len(updates) > 1:
                        await session.rollback()
                        return False
                    results.append((update, buffer))
            finally:
                current_batch.reset(batch_token)
            if batch.failed:
                # One update, and its handler failed: drop its writes, keep its apology.
                await session.rollback()
                batch.fsm.clear()
            elif isinstance(storage, DbStorage):
                await storage.flush(batch)
            rows = [(u.update_id, json.dumps(dump(b)) if b else None) for u, b in results]
            await repo.journal.record_handled(rows=rows, now=self.clock.now())
            replied, self._replied[:] = list(self._replied), []
            await repo.journal.mark_replied(update_ids=replied, now=self.clock.now())
            await session.commit()
        if isinstance(storage, DbStorage):
            storage.committed(batch)
        assert self.replies is not None
        for update, buffer in results:
            if buffer:
                self.replies.send(update.update_id, chat_of(buffer, _user_key(update)), buffer)
        self.last_handled = max([self.last_handled, *(u.update_id for u in updates)])
        return True

    async def resend_replies(self) -> int:
        """Send what the last run committed but did not get to send."""
        assert self.replies is not None
        async with self.sessions() as session:
            pending = await Repo(session).journal.unreplied()
        for update_id, records in pending:
            methods = load(json.loads(records))
            if methods:
                self.replies.send(update_id, chat_of(methods, 0), methods)
        await self.replies.drain()
        await self._mark_replied()
        return len(pending)

    async def _mark_replied(self) -> None:
        if not self._replied:
            return
        replied, self._replied[:] = list(self._replied), []
        async with self.sessions() as session:
            await Repo(session).journal.mark_replied(update_ids=replied, now=self.clock.now())
            await session.commit()

    async def idle(self) -> None:
        """Wait until the replies of everything handled so far have been sent."""
        assert self.replies is not None
        await self.replies.drain()

    async def _fetch(self, offset: int | None) -> list[Update]:
        """One long poll, abandoned at once on stop; unconfirmed updates simply come again."""
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
        return fetch.result()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)


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
