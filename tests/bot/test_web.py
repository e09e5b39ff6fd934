"""`daka webhook` in this process: the secret, deliveries, `/healthz` and `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.config import SettingError, Settings
from bot.web import SECRET_HEADER, run_webhook, webhook_target
from storage.db import create_engine, create_session_factory
from storage.models import InboundUpdate
from tests.fakebot import FakeBotAPI
from tests.services import free_port

SECRET = "s3cret-token_for-tests"


@dataclass
class Replica:
    base: str
    stop: asyncio.Event
    task: asyncio.Task[None]
    path: str = "/telegram"

    async def post(self, body: Any, secret: str | None = SECRET) -> aiohttp.ClientResponse:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with aiohttp.ClientSession() as http:
            response = await http.post(self.base + self.path, json=body, headers=headers)
            await response.read()
            return response

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.get(self.base + path) as response:
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, url: str | None, *, set_webhook: bool = True
) -> AsyncIterator[Replica]:
    """`daka webhook --url URL` in this process, on a free port of 127.0.0.1."""
    stop = asyncio.Event()
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        run_webhook(
            settings,
            host="127.0.0.1",
            port=0,
            url=url,
            set_webhook=set_webhook,
            ready=port.set_result,
            stop=stop,
        )
    )
    started: set[asyncio.Future[Any]] = {task, port}
    done, _ = await asyncio.wait(started, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raises what went wrong
    assert port in done, "the webhook server did not start"
    yield Replica(f"http://127.0.0.1:{port.result()}", stop, task)
    stop.set()
    await asyncio.wait_for(task, timeout=30)


def webhook_settings(server: FakeBotAPI, database_url: str, **more: Any) -> Settings:
    return Settings(
        _env_file=None,
        bot_token=server.token,
        telegram_api_url=server.url,
        database_url=database_url,
        webhook_secret=SECRET,
        **more,
    )


@pytest.fixture
async def replica(server: FakeBotAPI, database_url: str, redis_url: str) -> AsyncIterator[Replica]:
    settings = webhook_settings(server, database_url, redis_url=redis_url)
    async with serving(settings, "https://daka.example.edu") as running:
        yield running


def help_update(update_id: int, user_id: int = 5005) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": "Li", "language_code": "en"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user_id, "type": "private", "first_name": "Li"},
            "from": user,
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }


async def journal_size(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            return int((await session.exec(select(func.count()).select_from(InboundUpdate))).one())
    finally:
        await engine.dispose()


async def test_the_replica_that_sets_the_webhook_sends_the_secret_and_the_commands(
    replica: Replica, server: FakeBotAPI
) -> None:
    assert server.webhook_url == "https://daka.example.edu/telegram"
    info = server.calls_of("setWebhook")[-1].params
    assert info["secret_token"] == SECRET
    assert server.commands({"type": "all_private_chats"}), "no command menu installed"


async def test_deliveries_without_the_right_secret_get_401_and_are_not_handled(
    replica: Replica, server: FakeBotAPI, database_url: str
) -> None:
    missing = await replica.post(help_update(1), secret=None)
    wrong = await replica.post(help_update(2), secret="not-" + SECRET)
    assert (missing.status, wrong.status) == (401, 401)
    await server.expect_no_reply(5005)
    assert await journal_size(database_url) == 0

    right = await replica.post(help_update(3))
    assert right.status == 200
    reply = await server.next_reply(5005)
    assert "/checkin" in reply.text
    assert await journal_size(database_url) == 1


async def test_a_delivery_repeated_by_telegram_is_answered_once(
    replica: Replica, server: FakeBotAPI
) -> None:
    first = await replica.post(help_update(7))
    again = await replica.post(help_update(7))
    assert (first.status, again.status) == (200, 200)
    await server.next_reply(5005)
    await server.expect_no_reply(5005)


async def test_json_that_is_not_an_update_is_acknowledged_logged_and_journaled(
    replica: Replica, server: FakeBotAPI, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: it got 400, so Telegram would have sent it again and again."""
    assert (await replica.post(help_update(21))).status == 200
    await server.next_reply(5005)
    broken = await replica.post({"update_id": 22, "message": {"text": "neither chat nor date"}})
    nameless = await replica.post({"hello": "world"})
    assert (broken.status, nameless.status) == (200, 200)
    assert (await replica.post(help_update(23))).status == 200
    assert "/checkin" in (await server.next_reply(5005)).text
    assert await journal_size(database_url) == 3  # 21, 22 (skipped) and 23
    skipped = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(skipped) == 2 and "update 22 cannot be read" in skipped[0], skipped
    assert "neither chat" not in " ".join(skipped)  # what it said is not logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_body_that_is_not_json_gets_400(replica: Replica) -> None:
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{replica.base}/telegram", data=b"{not json", headers={SECRET_HEADER: SECRET}
        )
    assert response.status == 400


async def test_healthz_reports_the_database_and_redis(replica: Replica) -> None:
    status, body = await replica.get("/healthz")
    assert status == 200
    assert '"database": "ok"' in body and '"redis": "ok"' in body


async def test_metrics_count_updates_by_type(replica: Replica, server: FakeBotAPI) -> None:
    def handled(text: str) -> float:
        for line in text.splitlines():
            if line.startswith('daka_updates_total{type="message"}'):
                return float(line.split()[-1])
        return 0.0

    _, before = await replica.get("/metrics")
    await replica.post(help_update(11))
    await server.next_reply(5005)
    status, after = await replica.get("/metrics")
    assert status == 200
    assert handled(after) == handled(before) + 1
    for name in ("daka_outbox_depth", "daka_checkins_total", "daka_telegram_429_total"):
        assert name in after


async def test_telegram_delivers_to_the_path_the_url_names(
    server: FakeBotAPI, sqlite_url: str
) -> None:
    """Regression: `--url https://bot.example.org/hook` registered /hook while the server
    listened on WEBHOOK_PATH (/telegram), so every delivery got 404 and nobody an answer."""
    settings = webhook_settings(server, sqlite_url)
    async with serving(settings, "https://bot.example.org/hook") as replica:
        assert server.webhook_url == "https://bot.example.org/hook"
        # Telegram posts to the registered URL's path, on this replica.
        server.webhook_targets = [replica.base + urlsplit(server.webhook_url).path]
        li = server.user(5005, language_code="en")
        li.send("/help")
        reply = await li.next_reply()
        assert "/checkin" in reply.text
        assert [d.status for d in server.webhook_deliveries] == [200]
        assert (await replica.get("/healthz"))[0] == 200
        unregistered = await replace(replica, path="/telegram").post(help_update(9))
        assert unregistered.status == 404  # WEBHOOK_PATH is not served beside it


async def test_a_replica_that_does_not_set_the_webhook_serves_the_same_path(
    server: FakeBotAPI, sqlite_url: str
) -> None:
    settings = webhook_settings(server, sqlite_url)
    async with serving(settings, "https://bot.example.org/hook", set_webhook=False) as replica:
        assert server.webhook_url == "", "a --no-set-webhook replica called setWebhook"
        delivered = await replace(replica, path="/hook").post(help_update(1))
        assert delivered.status == 200
        assert "/checkin" in (await server.next_reply(5005)).text


async def test_a_replica_asks_telegram_who_the_bot_is_once_before_it_serves(
    server: FakeBotAPI, sqlite_url: str
) -> None:
    """Without BOT_USERNAME the bot's name is asked at start, as by `daka run`, not from inside
    the first update that needs it."""
    settings = webhook_settings(server, sqlite_url)
    assert settings.bot_username is None
    group: dict[str, Any] = {"id": -4005, "type": "group", "title": "Class one"}
    in_group = help_update(1)
    in_group["message"]["chat"] = group
    server.register_chat(group)
    async with serving(settings, "https://bot.example.org/hook", set_webhook=False) as replica:
        assert [call.method for call in server.calls] == ["getMe"]
        delivered = await replace(replica, path="/hook").post(in_group)
        assert delivered.status == 200
        reply = await server.next_reply(group["id"])
        assert reply.text == "Daka answers in a private chat only: https://t.me/daka_test_bot"
    assert [call.method for call in server.calls] == ["getMe", "sendMessage"]


def test_the_path_served_is_the_urls_and_a_site_gets_webhook_path() -> None:
    default = Settings(_env_file=None)
    assert webhook_target(default, "https://a.example") == (
        "https://a.example/telegram",
        "/telegram",
    )
    assert webhook_target(default, "https://a.example/") == (
        "https://a.example/telegram",
        "/telegram",
    )
    assert webhook_target(default, "https://a.example/hook/x") == (
        "https://a.example/hook/x",
        "/hook/x",
    )
    assert webhook_target(default, None) == (None, "/telegram")
    own = Settings(_env_file=None, webhook_path="/tg")
    assert webhook_target(own, "https://a.example") == ("https://a.example/tg", "/tg")
    assert webhook_target(own, "https://a.example/tg") == ("https://a.example/tg", "/tg")
    assert webhook_target(own, None) == (None, "/tg")
    with pytest.raises(SettingError) as conflict:
        webhook_target(own, "https://a.example/hook")
    assert str(conflict.value).startswith("WEBHOOK_PATH is /tg but --url https://a.example/hook")
    with pytest.raises(SettingError, match="/healthz serves the operations"):
        webhook_target(default, "https://a.example/healthz")


async def test_a_member_held_by_another_replica_waits_for_it(
    replica: Replica, server: FakeBotAPI, redis_url: str
) -> None:
    """The per-member lock lives in Redis (with REDIS_URL): while another replica handles
    this member, a delivery for them waits, then goes through."""
    from aiogram.fsm.storage.base import StorageKey
    from aiogram.fsm.storage.redis import RedisEventIsolation

    other = RedisEventIsolation.from_url(redis_url)
    key = StorageKey(bot_id=42, chat_id=5005, user_id=5005)
    try:
        async with other.lock(key):
            delivery = asyncio.create_task(replica.post(help_update(21)))
            done, _ = await asyncio.wait({delivery}, timeout=1.0)
            assert not done, "the delivery did not wait for the member's lock"
            await server.expect_no_reply(5005)
        response = await asyncio.wait_for(delivery, timeout=30)
        assert response.status == 200
        await server.next_reply(5005)
    finally:
        await other.redis.aclose(close_connection_pool=True)


async def test_the_polling_bot_and_the_scheduler_serve_health_and_metrics(
    database_url: str, redis_url: str
) -> None:
    from bot.web import serve_ops
    from storage.db import create_engine

    port = free_port()
    engine = create_engine(database_url)
    runner = await serve_ops(engine, None, port)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                assert health.status == 200 and (await health.json())["database"] == "ok"
            async with http.get(f"http://127.0.0.1:{port}/metrics") as scrape:
                assert "daka_reminders_sent_total" in await scrape.text()
    finally:
        await runner.cleanup()
        await engine.dispose()


def test_no_filter_is_left_to_a_worker_thread() -> None:
    """aiogram runs a synchronous filter (every `F.…`) through `asyncio.to_thread`; the
    dispatcher runs them inline instead (one thread hop less per filter tried per update).
    Since the core routes (domain.conversation.dispatch), the bot's routers have none left."""
    from aiogram.fsm.storage.memory import MemoryStorage

    from bot.app import create_dispatcher
    from domain.clock import SystemClock

    dp = create_dispatcher(
        settings=Settings(_env_file=None),
        sessions=None,  # type: ignore[arg-type]
        clock=SystemClock(),
        storage=MemoryStorage(),
    )
    checks = [
        check
        for router in dp.chain_tail
        for observer in router.observers.values()
        for handler in [getattr(observer, "_handler", None), *observer.handlers]
        if handler is not None
        for check in handler.filters or []
    ]
    assert all(check.awaitable for check in checks)
