"""The bot under test: the real dispatcher and aiohttp client, against the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiogram import Bot, Dispatcher
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import JournaledPolling, create_bot, create_dispatcher
from bot.config import Settings
from domain.clock import FixedClock
from handlers.telegram.common import install_commands
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import alembic_config, upgrade
from tests.conftest import redis_database
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage
from tests.storage.seeding import Seeding, telegram_id_of


@dataclass
class Daka(Seeding):
    """One running bot and its world: fake Telegram, a SQLite file, a hand-moved clock; seeding
    of the stories' school (`Seeding`)."""

    server: FakeBotAPI
    clock: FixedClock
    settings: Settings
    sessions: SessionFactory
    bot: Bot | None = None
    dp: Dispatcher | None = None
    poller: JournaledPolling | None = None
    task: asyncio.Task[None] | None = None
    org_ids: dict[str, int] = field(default_factory=dict)

    async def start(self) -> None:
        self.bot = create_bot(self.settings)
        self.dp = create_dispatcher(
            settings=self.settings, sessions=self.sessions, clock=self.clock
        )
        self.poller = JournaledPolling(
            bot=self.bot, dp=self.dp, sessions=self.sessions, clock=self.clock, poll_timeout=10
        )
        await install_commands(self.bot)
        self.task = asyncio.create_task(self.poller.run())
        await self.server.wait_for(lambda: self.server.polling, message="bot never polled")

    async def stop(self) -> None:
        if self.poller is not None and self.task is not None:
            self.poller.stop()
            await asyncio.wait_for(self.task, timeout=10)
        if self.bot is not None:
            await self.bot.session.close()
        if self.dp is not None:
            await self.dp.storage.close()
        self.bot = self.dp = self.poller = self.task = None

    async def settled(self) -> None:
        """Wait until every update pushed so far has been handled and committed."""
        poller = self.poller
        assert poller is not None
        target = self.server.last_update_id
        await self.server.wait_for(lambda: poller.last_handled >= target, message="not handled")
        await poller.idle()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def telegram_id_of(self, account_id: int | None) -> int | None:
        """The Telegram user id an account is known by (see tests.storage.seeding)."""
        async with self.sessions() as session:
            return await telegram_id_of(session, account_id)

    async def enrol(self, user: FakeUser, external_id: str, name: str, code: str) -> None:
        """The enrolment conversation, quickly, for tests about what comes after."""
        notice = await user.ask(f"/start {code}")
        user.press_button(notice, "✅ 同意" if user_is_zh(user) else "I agree")
        await reply_containing(user, "请发送您的学号", "send your member id")
        await user.ask(external_id)
        welcome = await user.ask(name)
        assert "欢迎" in welcome.text or "Welcome" in welcome.text, welcome.text


async def reply_containing(user: FakeUser, *needles: str) -> SentMessage:
    """Skip the bot's edits and acknowledgements until a message with one of `needles`."""
    while True:
        reply = await user.next_reply()
        if any(n in reply.text for n in needles):
            return reply


def user_is_zh(user: FakeUser) -> bool:
    return str(user.user_dict.get("language_code", "")).startswith("zh")


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def at_head(engine: AsyncEngine) -> bool:
    """Whether the database is migrated to the head: one query, where Alembic's own no-op
    upgrade loads every migration module again (70–150 ms a world)."""
    async with engine.connect() as connection:
        current = await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
    return current is not None and current == head_revision()


@contextlib.asynccontextmanager
async def running_daka(
    server: FakeBotAPI,
    clock: FixedClock,
    database_url: str,
    *,
    redis_url: str | None = None,
    admin_ids: frozenset[int] = frozenset(),
) -> AsyncIterator[Daka]:
    """A migrated database and a polling bot; stopped and disposed of on exit."""
    settings = Settings(
        bot_token=SecretStr(server.token),
        telegram_api_url=server.url,
        database_url=database_url,
        redis_url=redis_url,
        bot_username="daka_test_bot",
        admin_ids=admin_ids,
        _env_file=None,
    )
    engine = create_engine(database_url)
    if not await at_head(engine):  # a copy of the run's migrated template is
        await upgrade(engine)
    world = Daka(
        server=server, clock=clock, settings=settings, sessions=create_session_factory(engine)
    )
    await world.start()
    try:
        yield world
    finally:
        with contextlib.suppress(Exception):
            await world.stop()
        await engine.dispose()


@pytest.fixture
async def daka(
    server: FakeBotAPI, clock: FixedClock, database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[Daka]:
    """Every conversation twice: embedded (SQLite, state in the database) and at scale
    (PostgreSQL, state in Redis)."""
    if not database_url.startswith("postgresql"):
        async with running_daka(server, clock, database_url) as world:
            yield world
        return
    async with (
        redis_database(request.getfixturevalue("redis_server")) as redis_url,
        running_daka(server, clock, database_url, redis_url=redis_url) as world,
    ):
        yield world


def texts(messages: list[SentMessage]) -> list[str]:
    return [m.text for m in messages]


CLASS_ONE, COLLEGE, ADMIN = 700, 701, 702


async def grant(daka: Daka, telegram_id: int, *paths: str, slug: str = "school") -> None:
    """`telegram_id` made manager of the units at `paths`."""
    for path in paths:
        await daka.grant(telegram_id, path, slug=slug)


@pytest.fixture
async def school(daka: Daka, server: FakeBotAPI) -> Daka:
    """Managers of a class, of its college and of everything; three members, one abnormal."""
    from tests.handlers.test_checkin import answer_health_form

    await daka.org()
    await daka.grant(CLASS_ONE, "工程学院/一班")
    await daka.grant(COLLEGE, "工程学院")
    await daka.grant(ADMIN, None, role="admin")
    code = await daka.invite()
    for telegram_id, external_id, name in (
        (801, "2024001", "张三"),
        (802, "2024002", "李四"),
        (803, "2024003", "王五"),
    ):
        await daka.enrol(server.user(telegram_id), external_id, name, code)
    zhang = server.user(801)
    zhang.drain()
    summary = await answer_health_form(zhang, temperature="37.8")
    zhang.press_button(summary, "确认提交")
    await reply_containing(zhang, "打卡成功")
    await daka.settled()
    return daka
