"""Wiring of the WeCom channel: `daka wecom` serves the self-built apps' callback URLs
(journaled before the ack, handled by the conversation core, answered through WeCom's API),
`/healthz` and `/metrics`, and, when asked, the scheduler and the outbox sender; `daka wecom
menu SLUG` installs the menu of the organisation's app.

A deployment has one app (the `WECOM_*` settings) or several of one corporation (`WECOM_APPS`
adds the others), each with its own callback path, API client (and token), journal and inbox;
each app serves one organisation (`daka org set SLUG --wecom-agent AGENT_ID`), and the outbox's
letters go through the app of their organisation (`handlers.wecom.apps`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import SettingError, Settings, WeComSettings
from bot.shims.heap import settle_heap
from domain import metrics
from domain.clock import Clock, SystemClock
from domain.conversation.io import Input, Person, State
from domain.conversation.turn import Turn
from domain.delivery import TELEGRAM
from domain.geo import Place, resolve_place
from handlers.wecom.api import App, WeComAPI
from handlers.wecom.apps import AppsCourier
from handlers.wecom.courier import WeComCourier
from handlers.wecom.crypto import WeComCrypto
from handlers.wecom.inbox import Inbox, journal_of
from handlers.wecom.messages import CHANNEL
from handlers.wecom.replies import ReplySender
from handlers.wecom.server import CallbackEndpoint
from handlers.wecom.turns import Converse, StateOf, WeComTurns, media_fetcher
from scheduler.couriers import Courier
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.repo import Repo

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from scheduler.jobs import SchedulerService

log = logging.getLogger(__name__)

Resolve = Callable[[float, float], Place | None]
JOURNAL_KEEP = timedelta(days=2)
# Connections waiting to be accepted: a corp's members all tapping 打卡 at the bell open
# hundreds at once, and past aiohttp's default of 128 the kernel drops the rest (their
# callbacks wait a second for the client to try again).
BACKLOG = 1024
PRUNE_EVERY = 3600.0


def conversation(
    api: WeComAPI,
    *,
    resolve: Resolve | None = None,
    wake: Callable[[], None] | None = None,
) -> tuple[Converse, StateOf]:
    """The conversation core for WeCom's turns: its routing and a person's state."""
    from domain.conversation.dispatch import Services, converse
    from storage.conversation_state import StoredState

    services = Services(
        resolve=resolve or resolve_place,
        fetch=media_fetcher(api),
        wake=wake,
        recorded=metrics.CHECKINS.inc,
    )

    async def answer(turn: Turn, given: Input) -> None:
        await converse(turn, given, services)

    def state_of(session: AsyncSession, person: Person) -> State:
        return StoredState(
            session, channel=person.channel, external_id=person.external_id, deferred=True
        )

    return answer, state_of


@dataclass
class WeComChannel:
    """One app's channel in this process: its API client, the inbox, the callback endpoint."""

    settings: WeComSettings
    api: WeComAPI
    inbox: Inbox
    endpoint: CallbackEndpoint

    def routes(self) -> list[web.RouteDef]:
        return [route for path in self.settings.paths for route in self.endpoint.routes(path)]


def build_channel(
    settings: Settings,
    sessions: SessionFactory,
    clock: Clock,
    http: aiohttp.ClientSession,
    *,
    resolve: Resolve | None = None,
    wake: Callable[[], None] | None = None,
    converse: Converse | None = None,
    state_of: StateOf | None = None,
    app: WeComSettings | None = None,
    redis: Redis | None = None,
) -> WeComChannel:
    """The channel of `app` (by default the first app, `WECOM_*`); `converse` and `state_of`
    default to the core's (`conversation`); `redis` keeps the app's count per member
    (`shared_counts`)."""
    wecom = app or settings.require_wecom()
    first = wecom.agent_id == settings.wecom_agent_id
    api = WeComAPI(
        http,
        App(wecom.corp_id, wecom.agent_id, wecom.secret),
        base_url=wecom.api_url,
        clock=clock,
        redis=redis,
    )
    if converse is None or state_of is None:
        core, stored = conversation(api, resolve=resolve, wake=wake)
        converse, state_of = converse or core, state_of or stored
    turns = WeComTurns(converse, state_of, clock, wecom.agent_id, deployment_channels(settings))
    replies = ReplySender(api, database_url=_url(sessions))
    journal = journal_of(wecom.agent_id, first=first)
    inbox = Inbox(sessions, clock, turns, replies, journal=journal)
    crypto = WeComCrypto(wecom.token, wecom.aes_key, wecom.corp_id)
    endpoint = CallbackEndpoint(crypto, inbox.take, before_ack=True, clock=clock)
    return WeComChannel(wecom, api, inbox, endpoint)


def build_channels(
    settings: Settings,
    sessions: SessionFactory,
    clock: Clock,
    http: aiohttp.ClientSession,
    *,
    resolve: Resolve | None = None,
    wake: Callable[[], None] | None = None,
    redis: Redis | None = None,
) -> list[WeComChannel]:
    """A channel for each app of the deployment, the first (`WECOM_*`) first."""
    return [
        build_channel(
            settings, sessions, clock, http, resolve=resolve, wake=wake, app=app, redis=redis
        )
        for app in settings.require_wecom_apps()
    ]


def shared_counts(settings: Settings, closing: contextlib.AsyncExitStack) -> Redis | None:
    """With `REDIS_URL`, the Redis the apps' counts per member are kept in, shared by every
    process sending on the apps (`daka wecom`'s replies, each `daka scheduler`'s letters), and
    closed with `closing`; None without (each process counts its own). Short timeouts: a
    Redis out of reach costs a reply two seconds at most, and is sent all the same."""
    if not settings.redis_url:
        return None
    from redis.asyncio import Redis

    client = Redis.from_url(settings.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
    closing.push_async_callback(client.aclose)
    return client


def deployment_channels(settings: Settings) -> frozenset[str]:
    """The channels this deployment reaches people on (alerts and nudges written by a WeCom
    turn go to managers on each): WeCom, and Telegram when it has a bot token."""
    return frozenset({CHANNEL} | ({TELEGRAM} if settings.bot_token is not None else set()))


def courier(api: WeComAPI, sessions: SessionFactory) -> WeComCourier:
    """The outbox's courier for the app, reading its organisation's text-only setting."""
    agent = str(api.app.agent_id)

    async def text_only() -> bool:
        async with sessions() as session:
            served = await Repo(session).channels.serving(channel=CHANNEL, app_id=agent)
        return served is not None and served.setting.text_only

    return WeComCourier(api, text_only=text_only)


def apps_courier(apis: list[WeComAPI], sessions: SessionFactory) -> WeComCourier | AppsCourier:
    """The outbox's courier for the deployment's apps (the first app's API first): the app's
    own with one app, else one that sends each letter through its organisation's app."""
    couriers = {api.app.agent_id: courier(api, sessions) for api in apis}
    if len(couriers) == 1:
        return couriers[apis[0].app.agent_id]

    async def serving() -> dict[int, str]:
        async with sessions() as session:
            return await Repo(session).channels.apps(channel=CHANNEL)

    return AppsCourier(couriers, first=apis[0].app.agent_id, serving=serving)


def wecom_courier(
    settings: Settings,
    sessions: SessionFactory,
    http: aiohttp.ClientSession,
    clock: Clock | None = None,
    redis: Redis | None = None,
) -> WeComCourier | AppsCourier | None:
    """The WeCom courier for a sender in another process (`daka run`, `daka scheduler`), when
    the `WECOM_*` settings sending needs are there (not the callback's Token and
    EncodingAESKey); None otherwise. `http` (and `redis`, `shared_counts`) live as long as the
    sender."""
    try:
        apps = settings.require_wecom_senders()
    except SettingError:
        return None
    apis = [
        WeComAPI(
            http,
            App(app.corp_id, app.agent_id, app.secret),
            base_url=app.api_url,
            clock=clock,
            redis=redis,
        )
        for app in apps
    ]
    return apps_courier(apis, sessions)


async def served_org(
    sessions: SessionFactory, agent_id: int, setting: str = "WECOM_AGENT_ID"
) -> str:
    """The slug of the organisation the app serves; a SettingError (naming the `setting` the
    app comes from) when none does."""
    async with sessions() as session:
        served = await Repo(session).channels.serving(channel=CHANNEL, app_id=str(agent_id))
    if served is None:
        raise SettingError(
            setting,
            f"{agent_id} serves no organisation: run daka org set SLUG --wecom-agent {agent_id}",
        )
    return served.org.slug


@dataclass
class WeComServer:
    """The apps' callback server in a process: a channel per app, its HTTP site, `/healthz`
    and `/metrics`, and the journals' pruning; `daka wecom` runs it alone, `daka run` beside
    Telegram's polling. Opened (the inboxes resume), listening, then closed (callbacks stop,
    those taken are handled and answered)."""

    channels: list[WeComChannel]
    engine: AsyncEngine
    sessions: SessionFactory
    clock: Clock
    slugs: list[str]
    wake: _Wake = field(default_factory=lambda: _Wake())
    _runner: web.AppRunner | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _pruning: asyncio.Task[None] | None = None

    @classmethod
    async def build(
        cls,
        settings: Settings,
        engine: AsyncEngine,
        sessions: SessionFactory,
        clock: Clock,
        http: aiohttp.ClientSession,
        redis: Redis | None = None,
    ) -> WeComServer:
        """The server of the apps in `settings`, on a migrated database; a SettingError when
        an app serves no organisation. `redis` keeps the apps' counts per member
        (`shared_counts`)."""
        apps = settings.require_wecom_apps()
        slugs = [
            await served_org(sessions, app.agent_id, "WECOM_APPS" if i else "WECOM_AGENT_ID")
            for i, app in enumerate(apps)
        ]
        await asyncio.to_thread(_load_places)
        wake = _Wake()
        channels = build_channels(settings, sessions, clock, http, wake=wake, redis=redis)
        return cls(channels, engine, sessions, clock, slugs, wake)

    @property
    def channel(self) -> WeComChannel:
        """The first app's channel (`WECOM_*`)."""
        return self.channels[0]

    def courier(self) -> WeComCourier | AppsCourier:
        """The outbox's courier sharing the channels' API clients (and their tokens)."""
        return apps_courier([channel.api for channel in self.channels], self.sessions)

    async def open(self) -> None:
        """Resume the journals: replies a crash held back, events a crash left unhandled."""
        journals = [channel.inbox.journal for channel in self.channels]
        self._pruning = asyncio.create_task(
            _prune(self.sessions, self.clock, self._stopped, journals)
        )
        for channel in self.channels:
            await channel.inbox.start()

    async def listen(self, host: str, port: int) -> int:
        """Accept callbacks on host:port; returns the port bound."""
        from bot.web import Probe, _bound_port

        app = web.Application()
        for channel in self.channels:
            app.add_routes(channel.routes())
        Probe(self.engine).add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, backlog=BACKLOG).start()
        bound = _bound_port(self._runner, port)
        for channel, slug in zip(self.channels, self.slugs, strict=True):
            agent, paths = channel.settings.agent_id, " ".join(channel.settings.paths)
            log.info("wecom app %s of %s on %s:%d %s", agent, slug, host, bound, paths)
        return bound

    async def close(self) -> None:
        """No more callbacks; those being taken finish, and their replies are sent."""
        log.info("wecom server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        for channel in self.channels:
            await channel.endpoint.drain()
        for channel in self.channels:
            await channel.inbox.close()
        self._stopped.set()
        if self._pruning is not None:
            await self._pruning


async def run_wecom(
    settings: Settings,
    *,
    host: str,
    port: int,
    with_scheduler: bool = False,
    clock: Clock | None = None,
    ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """`daka wecom` (and `daka run` with WeCom alone): migrations, then serve the app's
    callbacks until SIGINT/SIGTERM (or `stop`); `ready` is told the port once callbacks are
    accepted."""
    from bot.app import prepare_database

    settings.require_wecom_apps()
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as closing:
        engine = create_engine(settings.database_url)
        closing.push_async_callback(engine.dispose)
        await prepare_database(engine)
        sessions = create_session_factory(engine)
        http = await closing.enter_async_context(aiohttp.ClientSession())
        redis = shared_counts(settings, closing)
        server = await WeComServer.build(settings, engine, sessions, clock, http, redis)
        stopped = stop or asyncio.Event()
        if stop is None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopped.set)
        service = (
            _scheduler(settings, sessions, clock, server, closing) if with_scheduler else None
        )
        scheduling = None
        try:
            await server.open()
            if service is not None:
                server.wake.target = service.sender.wake
                scheduling = service.start()
            settle_heap()  # before the first callback: no full collection walks start-up
            bound = await server.listen(host, port)
            if ready is not None:
                ready(bound)
            await stopped.wait()
        finally:
            await server.close()
            if service is not None and scheduling is not None:
                await service.stop(*scheduling)
            stopped.set()


class _Wake:
    """Wakes the outbox sender once there is one (alerts queued by a check-in)."""

    target: Callable[[], None] | None = None

    def __call__(self) -> None:
        if self.target is not None:
            self.target()


def _scheduler(
    settings: Settings,
    sessions: SessionFactory,
    clock: Clock,
    server: WeComServer,
    closing: contextlib.AsyncExitStack,
) -> SchedulerService:
    """The scheduler and the outbox sender, with a courier for WeCom and, when `BOT_TOKEN` is
    set, for Telegram: one scheduler serves every channel of the deployment."""
    from bot.app import conversation_forgetter, create_bot, create_couriers
    from domain.i18n import create_translator
    from scheduler.jobs import SchedulerService

    couriers: dict[str, Courier] = {CHANNEL: server.courier()}
    if settings.bot_token is not None:
        bot = create_bot(settings)
        closing.push_async_callback(bot.session.close)
        couriers.update(create_couriers(bot, send_rate=settings.send_rate))
    return SchedulerService(
        couriers, sessions, clock, create_translator(), conversation_forgetter(settings)
    )


def _load_places() -> None:
    from domain.geo import DEFAULT_RESOLVER

    DEFAULT_RESOLVER.load()


async def _prune(
    sessions: SessionFactory, clock: Clock, stopped: asyncio.Event, journals: list[str]
) -> None:
    """The journals are crash buffers: events answered two days ago go, hourly."""
    while not stopped.is_set():
        try:
            removed = 0
            async with sessions() as session:
                for journal in journals:
                    removed += await Repo(session).inbox.prune(
                        channel=journal, before=clock.now() - JOURNAL_KEEP
                    )
                await session.commit()
            if removed:
                log.info("pruned %d answered wecom events", removed)
        except Exception as exc:
            log.warning("could not prune the wecom journal: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=PRUNE_EVERY)


def _url(sessions: SessionFactory) -> str | None:
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    return None if url is None else url.render_as_string(hide_password=False)
