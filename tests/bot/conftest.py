"""CLI tests run in a temporary folder with their own SQLite database."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakebot import FakeBotAPI
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.world import AES_KEY, AGENT, SECRET, TOKEN


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder whose DATABASE_URL names a SQLite file that is not there yet."""
    db = tmp_path / "daka.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("BOT_USERNAME", "daka_test_bot")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def env(bare_env: Path, sqlite_template: Path) -> Path:
    """`bare_env` with its database at the head already, a copy of the run's template: the
    first command would otherwise spend 0.4 s migrating it (a test of what happens before the
    database is touched asks for `bare_env`)."""
    shutil.copyfile(sqlite_template, bare_env / "daka.db")
    return bare_env


@pytest.fixture
def telegram(env: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotAPI]:
    """The fake Bot API on an event loop in a thread of its own, BOT_TOKEN and
    TELEGRAM_API_URL pointing at it (the CLI runs its own event loop). Its records are read
    once a command has returned."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-telegram", daemon=True)
    thread.start()
    server = FakeBotAPI()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        monkeypatch.setenv("BOT_TOKEN", server.token)
        monkeypatch.setenv("TELEGRAM_API_URL", server.url)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    assert server.internal_errors == []


@pytest.fixture
def wecom_env(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalWeCom]:
    """The local WeCom on a loop of its own (the CLI runs its own), WECOM_* pointing at it."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-wecom", daemon=True)
    thread.start()
    server = LocalWeCom()
    server.add_app(AGENT, SECRET)
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        for name, value in {
            "WECOM_CORP_ID": server.corp_id,
            "WECOM_AGENT_ID": str(AGENT),
            "WECOM_SECRET": SECRET,
            "WECOM_TOKEN": TOKEN,
            "WECOM_AES_KEY": AES_KEY,
            "WECOM_API_URL": server.url,
        }.items():
            monkeypatch.setenv(name, value)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
