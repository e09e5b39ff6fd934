"""`daka demo` put together: the web chat's port, the local Bot API, the sample school, and
the real bot polling it (``run_polling``, the code path of `daka run`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import tempfile
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

from bot.cli.common import UsageError, UserError
from bot.config import Settings
from bot.demo.school import SLUG, Sample, sample, seed
from bot.demo.warmup import warm_up
from bot.demo.webchat import WebChat
from bot.localapi import LocalBotAPI
from domain.clock import Clock, SystemClock
from storage.db import create_engine, create_session_factory
from storage.repo import Repo

log = logging.getLogger(__name__)

TOKEN = "4242:daka-demo"
BOT_USERNAME = "daka_demo_bot"
START_TIMEOUT_S = 60.0


class PortInUse(Exception):
    """The web chat's port is taken."""


class Demo:
    """One demo: start() brings everything up, stop() takes it down (and a temporary folder
    with it). Tests run it in-process on free ports (``port=0``)."""

    def __init__(
        self,
        *,
        port: int = 8080,
        host: str = "127.0.0.1",
        data: Path | None = None,
        language: str = "zh",
        clock: Clock | None = None,
        classmates: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.data = data
        self.clock = clock or SystemClock()
        self.classmates = classmates  # two students check in as the demo starts
        self.sample: Sample = sample(language)
        self.server = LocalBotAPI(
            TOKEN, 4242, BOT_USERNAME, bot_first_name="Daka (demo)", require_known_chats=True
        )
        self.webchat = WebChat(self.server, self.sample, self.remind)
        self.folder: Path | None = None
        self.settings: Settings | None = None
        self._temporary = False
        self._web: web.AppRunner | None = None
        self._stop = asyncio.Event()
        self.bot_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def start(self) -> None:
        """The port first (a taken one fails before anything is made), then the rest."""
        await self._serve_web_chat()
        try:
            self.folder = self._folder()
            database = self.folder / "daka.db"
            await self.server.start()
            self.settings = Settings(
                bot_token=SecretStr(self.server.token),
                telegram_api_url=self.server.url,
                database_url=f"sqlite+aiosqlite:///{database}",
                redis_url=None,
                bot_username=self.server.bot_username,
                _env_file=None,
            )
            new = await seed(self.sample, self.settings, self.clock, self.folder)
            if not new:
                await self._continue_update_ids()
            await self._start_bot()
            if new and self.classmates:
                await warm_up(self.server, self.sample.invites["member"], self.sample.classmates)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._stop.set()
        if self.bot_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.bot_task, timeout=30)
            self.bot_task = None
        if self._web is not None:
            await self._web.cleanup()
            self._web = None
        await self.server.stop()
        if self._temporary and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def request_stop(self) -> None:
        """Ask wait() to return (a signal handler may call this)."""
        self._stop.set()

    async def wait(self) -> None:
        """Until stop() is called, or the bot stops by itself (its error is raised here)."""
        assert self.bot_task is not None
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({stopped, self.bot_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if self.bot_task.done() and not self._stop.is_set():
            self.bot_task.result()
            raise UserError("the bot stopped")

    async def remind(self) -> str:
        """A reminder round now, as `daka remind SLUG` sends it."""
        from bot.cli.run import remind_now

        assert self.settings is not None
        engine = create_engine(self.settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                try:
                    line = await remind_now(Repo(session), self.settings, self.clock, slug=SLUG)
                except UserError as exc:
                    return str(exc)
                await session.commit()
                return line
        finally:
            await engine.dispose()

    async def _continue_update_ids(self) -> None:
        """A reused ``--data`` folder's bot resumes after the updates it handled last time."""
        assert self.settings is not None
        engine = create_engine(self.settings.database_url)
        try:
            async with create_session_factory(engine)() as session:
                offset = await Repo(session).journal.next_offset()
        finally:
            await engine.dispose()
        if offset is not None:
            self.server.continue_update_ids(offset - 1)

    def _folder(self) -> Path:
        if self.data is None:
            self._temporary = True
            return Path(tempfile.mkdtemp(prefix="daka-demo-"))
        try:
            self.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"demo: --data {self.data}: {exc.strerror}") from None
        return self.data

    async def _serve_web_chat(self) -> None:
        runner = web.AppRunner(self.webchat.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {self.port} on {self.host} is in use") from None
            raise PortInUse(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self._web = runner
        self.port = int(runner.addresses[0][1])

    async def _start_bot(self) -> None:
        from bot.app import run_polling

        assert self.settings is not None
        self.bot_task = asyncio.create_task(
            run_polling(self.settings, clock=self.clock, stop=self._stop), name="daka-demo-bot"
        )
        polling = asyncio.ensure_future(
            self.server.wait_for(lambda: self.server.polling, timeout=START_TIMEOUT_S)
        )
        try:
            await asyncio.wait({polling, self.bot_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            polling.cancel()
        if polling.done() and not polling.cancelled():
            polling.exception()  # a timeout: said below
        if self.bot_task.done():
            self.bot_task.result()  # its error
            raise UserError("the bot stopped while starting")
        if not self.server.polling:
            raise UserError(f"the bot did not start polling within {START_TIMEOUT_S:.0f} s")
