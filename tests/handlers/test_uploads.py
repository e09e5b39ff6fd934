"""Files a manager or member asks for (/export, /trend, /mydata) are replies like any other:
they leave once the update's transaction has committed, and a batch that is rolled back and
handled again sends each of them once. An export is made after the commit, off the event loop,
while the bot goes on answering everyone else."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram import BaseMiddleware, Dispatcher
from aiogram.types import TelegramObject, Update
from sqlmodel import select

from storage.models import AuditEntry
from tests.fakebot import FakeBotAPI
from tests.handlers import conftest
from tests.handlers.conftest import CLASS_ONE, Daka

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FailOnce(BaseMiddleware):
    """Fails the first handling of updates whose text is `text`, after their handler ran:
    the batch they are in is rolled back and handled again, one update at a time."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.failed = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        message = event.message if isinstance(event, Update) else None
        if message is not None and message.text == self.text and not self.failed:
            self.failed += 1
            raise RuntimeError("a later step of the update failed")
        return result


class HoldAfterHandling(BaseMiddleware):
    """Keeps the batch from committing after the handler of `text` ran, until released."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.handled = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        message = event.message if isinstance(event, Update) else None
        if message is not None and message.text == self.text:
            self.handled.set()
            await self.release.wait()
        return result


def install(monkeypatch: pytest.MonkeyPatch, *middlewares: BaseMiddleware) -> None:
    """The next dispatcher the test bot builds runs `middlewares` inside Daka's own."""
    build = conftest.create_dispatcher

    def create(**kwargs: Any) -> Dispatcher:
        dp = build(**kwargs)
        for middleware in middlewares:
            dp.update.outer_middleware(middleware)
        return dp

    monkeypatch.setattr(conftest, "create_dispatcher", create)


async def in_one_batch(
    daka: Daka,
    monkeypatch: pytest.MonkeyPatch,
    sends: Callable[[], None],
    *middlewares: BaseMiddleware,
) -> None:
    """Restart the bot with `middlewares`, and have what `sends` pushes reach it in one batch:
    pushed while the batch before it (a /help) is held open."""
    hold = HoldAfterHandling("/help")
    install(monkeypatch, hold, *middlewares)
    await daka.restart()
    helper = daka.server.user(999)
    helper.send("/help")
    await asyncio.wait_for(hold.handled.wait(), timeout=10)
    sends()
    hold.release.set()
    await daka.settled()


async def exports_audited(daka: Daka) -> int:
    async with daka.sessions() as session:
        found = await session.exec(select(AuditEntry).where(AuditEntry.action == "export"))
        return len(found.all())


async def test_a_replayed_batch_sends_the_export_once(
    school: Daka, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the export went out inside the open transaction, and again when its batch
    was rolled back and handled one update at a time."""
    counselor, member = server.user(CLASS_ONE), server.user(802)
    member.drain()

    def sends() -> None:
        counselor.send("/export")
        member.send("/today")

    failing = FailOnce("/export")
    await in_one_batch(school, monkeypatch, sends, failing)

    document = await counselor.next_reply()
    assert failing.failed == 1
    assert document.file_name == "daka-2026-11-28-2026-11-28.xlsx"
    assert "共 2 行" in document.text
    assert server.count("sendDocument") == 1
    today = await member.next_reply()
    assert "2026-11-28" in today.text
    assert await exports_audited(school) == 1


async def test_an_export_leaves_after_the_commit(
    school: Daka, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = HoldAfterHandling("/export csv")
    install(monkeypatch, hold)
    await school.restart()
    counselor = server.user(CLASS_ONE)

    counselor.send("/export csv")
    await asyncio.wait_for(hold.handled.wait(), timeout=10)
    await server.expect_no_reply(CLASS_ONE, within=0.3)
    assert server.count("sendDocument") == 0
    assert await exports_audited(school) == 0  # not committed yet
    hold.release.set()
    await school.settled()  # handled, and every reply sent: the file made too

    document = await counselor.next_reply()
    assert document.file_name == "daka-2026-11-28-2026-11-28.csv"
    assert "共 2 行，2026-11-28 至 2026-11-28" in document.text
    rows = server.file_bytes(document.file_id or "").decode("utf-8-sig").splitlines()
    assert [r.split(",")[2] for r in rows[1:]] == ["2024001", "2024002"]
    assert server.count("sendDocument") == 1
    assert await exports_audited(school) == 1


async def test_a_chart_and_a_member_s_data_are_sent_once_after_a_replay(
    school: Daka, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    counselor, zhang = server.user(CLASS_ONE), server.user(801)
    assert (await counselor.ask("/trend", timeout=30)).photo  # matplotlib loaded: no slow batch
    zhang.drain()

    def sends() -> None:
        zhang.send("/mydata")
        counselor.send("/trend 7")  # fails once after its chart was made: both are made again

    failing = FailOnce("/trend 7")
    await in_one_batch(school, monkeypatch, sends, failing)

    chart = await counselor.next_reply()
    assert chart.photo and "2026-11-22" in chart.text
    data = await zhang.next_reply()
    assert data.file_name == "daka-mydata.json"
    assert "2024001" in server.file_bytes(data.file_id or "").decode("utf-8")
    assert failing.failed == 1
    assert server.count("sendPhoto") == 2  # the first /trend, and this one once
    assert server.count("sendDocument") == 1
