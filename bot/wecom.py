"""Wiring of the WeCom channel: `daka wecom` serves one self-built app's callback URL
(journaled before the ack, handled by the conversation core, answered through WeCom's API),
`/healthz` and `/metrics`, and, when asked, the scheduler and the outbox sender; `daka wecom
menu SLUG` installs the app's menu.

One process serves one app (the `WECOM_*` settings), and the app serves one organisation
(`daka org set SLUG --wecom-agent AGENT_ID`)."""

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
from domain import metrics
from domain.clock import Clock, SystemClock
from domain.conversation.io import Input, Person, State
from domain.conversation.turn import Turn
from domain.delivery import TELEGRAM
from domain.geo import Place, resolve_place
from handlers.wecom.api import App, WeComAPI
from handlers.wecom.courier import WeComCourier
from handlers.wecom.crypto import WeComCrypto
from handlers.wecom.inbox import Inbox
from handlers.wecom.messages import CHANNEL
from handlers.wecom.replies import ReplySender
from handlers.wecom.server import CallbackEndpoint
from handlers.wecom.turns import Converse, StateOf, WeComTurns, media_fetcher
from scheduler.couriers import Courier
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.repo import Repo

if TYPE_CHECKING:
    from scheduler.jobs import SchedulerService

log = logging.getLogger(__name__)

Resolve = Callable[[float, float], Place | None]
JOURNAL_KEEP = timedelta(days=2)
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
        return StoredState(session, channel=person.channel, external_id=person.external_id)

    return answer, state_of


@dataclass
class WeComChannel:
    """One app's channel in this process: its API client, the inbox, the callback endpoint."""

    settings: WeComSettings
    api: WeComAPI
    inbox: Inbox
    endpoint: CallbackEndpoint

    def routes(self) -> list[web.RouteDef]:
        return self.endpoint.routes(self.settings.path)


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
) -> WeComChannel:
    """The channel of the app in `settings` (`WECOM_*`); `converse` and `state_of` default to
    the core's (`conversation`)."""
    wecom = settings.require_wecom()
    api = WeComAPI(
        http, App(wecom.corp_id, wecom.agent_id, wecom.secret), base_url=wecom.api_url, clock=clock
    )
    if converse is None or state_of is None:
        core, stored = conversation(api, resolve=resolve, wake=wake)
        converse, state_of = converse or core, state_of or stored
    turns = WeComTurns(converse, state_of, clock, wecom.agent_id, deployment_channels(settings))
    inbox = Inbox(sessions, clock, turns, ReplySender(api, database_url=_url(sessions)))
    crypto = WeComCrypto(wecom.token, wecom.aes_key, wecom.corp_id)
    endpoint = CallbackEndpoint(crypto, inbox.take, before_ack=True, clock=clock)
    return WeComChannel(wecom, api, inbox, endpoint)


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


def wecom_courier(
    settings: Settings,
    sessions: SessionFactory,
    http: aiohttp.ClientSession,
    clock: Clock | None = None,
) -> WeComCourier | None:
    """The WeCom courier for a sender in another process (`daka run`, `daka scheduler`), when
    the `WECOM_*` settings are all there; None otherwise. `http` lives as long as the sender."""
    if settings.wecom_corp_id is None or settings.wecom_agent_id is None:
        return None
    try:
        wecom = settings.require_wecom()
    except SettingError:
        return None
    app = App(wecom.corp_id, wecom.agent_id, wecom.secret)
    return courier(WeComAPI(http, app, base_url=wecom.api_url, clock=clock), sessions)


async def served_org(sessions: SessionFactory, agent_id: int) -> str:
    """The slug of the organisation the app serves; a SettingError when none does."""
    async with sessions() as session:
        served = await Repo(session).channels.serving(channel=CHANNEL, app_id=str(agent_id))
    if served is None:
        raise SettingError(
            "WECOM_AGENT_ID",
            f"{agent_id} serves no organisation: run daka org set SLUG --wecom-agent {agent_id}",
        )
    return served.org.slug


@dataclass
class WeComServer:
    """The app's callback server in a process: the channel, its HTTP site, `/healthz` and
    `/metrics`, and the journal's pruning; `daka wecom` runs it alone, `daka run` beside
    Telegram's polling. Opened (the inbox resumes), listening, then closed (callbacks stop,
    those taken are handled and answered)."""

    channel: WeComChannel
    engine: AsyncEngine
    sessions: SessionFactory
    clock: Clock
    slug: str
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
    ) -> WeComServer:
        """The server of the app in `settings`, on a migrated database; a SettingError when
        the app serves no organisation."""
        slug = await served_org(sessions, settings.wecom_agent_id or 0)
        await asyncio.to_thread(_load_places)
        wake = _Wake()
        channel = build_channel(settings, sessions, clock, http, wake=wake)
        return cls(channel, engine, sessions, clock, slug, wake)

    def courier(self) -> WeComCourier:
        """The outbox's courier sharing the channel's API client (and its token)."""
        return courier(self.channel.api, self.sessions)

    async def open(self) -> None:
        """Resume the journal: replies a crash held back, events a crash left unhandled."""
        self._pruning = asyncio.create_task(_prune(self.sessions, self.clock, self._stopped))
        await self.channel.inbox.start()

    async def listen(self, host: str, port: int) -> int:
        """Accept callbacks on host:port; returns the port bound."""
        from bot.web import Probe, _bound_port

        app = web.Application()
        app.add_routes(self.channel.routes())
        Probe(self.engine).add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = _bound_port(self._runner, port)
        agent, path = self.channel.settings.agent_id, self.channel.settings.path
        log.info("wecom app %s of %s on %s:%d%s", agent, self.slug, host, bound, path)
        return bound

    async def close(self) -> None:
        """No more callbacks; those being taken finish, and their replies are sent."""
        log.info("wecom server stopping")
        if self._runner is not None:
            await self._runner.cleanup()
        await self.channel.endpoint.drain()
        await self.channel.inbox.close()
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

    settings.require_wecom()
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as closing:
        engine = create_engine(settings.database_url)
        closing.push_async_callback(engine.dispose)
        await prepare_database(engine)
        sessions = create_session_factory(engine)
        http = await closing.enter_async_context(aiohttp.ClientSession())
        server = await WeComServer.build(settings, engine, sessions, clock, http)
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


async def _prune(sessions: SessionFactory, clock: Clock, stopped: asyncio.Event) -> None:
    """The journal is a crash buffer: events answered two days ago go, hourly."""
    while not stopped.is_set():
        try:
            async with sessions() as session:
                removed = await Repo(session).inbox.prune(
                    channel=CHANNEL, before=clock.now() - JOURNAL_KEEP
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
