"""SIGKILL in the middle of a burst of check-ins: nothing lost, nothing handled twice.

The bot runs as a real `daka run` process against the fake Bot API; it is killed while members
are half-way through their conversations and started again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.app import BATCH_LIMIT
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import CheckIn, CheckInRevision, InboundUpdate
from storage.repo import Repo, RosterRow
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage
from tests.storage.seeding import telegram_account

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 120
STEP_TIMEOUT = 60.0
DONE = "打卡成功"


async def until(user: FakeUser, needle: str) -> SentMessage:
    while True:
        reply = await user.next_reply(timeout=STEP_TIMEOUT)
        if needle in reply.text:
            return reply


async def check_in(user: FakeUser) -> None:
    """A whole health check-in, tolerant of repeated replies after a crash."""
    user.send("/checkin")
    await until(user, "请发送您当前所在的位置")
    user.send_location(39.9087, 116.3975, accuracy=10)
    await until(user, "请输入您今天测量的体温")
    await from_temperature(user)


async def from_temperature(user: FakeUser) -> None:
    """The rest of a check-in once the temperature is asked for."""
    user.send("36.6")
    symptoms = await until(user, "您今天是否有以下症状")
    user.press_button(symptoms, "以上都没有")
    ticked = await until(user, "您今天是否有以下症状")
    user.press_button(ticked, "完成")
    exposure = await until(user, "近14天内")
    user.press_button(exposure, "否")
    photo = await until(user, "如有需要，请上传一张照片")
    user.press_button(photo, "跳过")
    summary = await until(user, "请核对")
    user.press_button(summary, "确认提交")
    await until(user, DONE)


def start_bot(server: FakeBotAPI, database_url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "REDIS_"))},
        "BOT_TOKEN": server.token,
        "TELEGRAM_API_URL": server.url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    with open(home / "bot.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def seed(database_url: str, users: list[int]) -> None:
    engine = create_engine(database_url)
    await upgrade(engine)
    now = datetime.now(UTC)
    async with create_session_factory(engine)() as session:
        repo = Repo(session)
        org = await repo.orgs.create(
            slug="school",
            name="第一中学",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=now,
        )
        rows = [
            RosterRow(line=i, unit="一班", member_id=str(uid), name=f"学生{uid}")
            for i, uid in enumerate(users, start=2)
        ]
        await repo.members.import_roster(org_id=org.id or 0, rows=rows)
        for uid in users:
            member = await repo.members.by_external(org_id=org.id or 0, external_id=str(uid))
            assert member is not None
            account_id = await telegram_account(repo, uid, now=now)
            await repo.members.bind(member=member, account_id=account_id, now=now)
        await session.commit()
    await engine.dispose()


async def test_sigkill_in_a_burst_loses_no_update_and_handles_none_twice(
    server: FakeBotAPI, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    ids = list(range(10_000, 10_000 + MEMBERS))
    await seed(database_url, ids)
    users = [server.user(uid, language_code="zh-hans") for uid in ids]

    bot = start_bot(server, database_url, tmp_path)
    try:
        await server.wait_for(lambda: server.polling, timeout=30, message="bot never polled")
        conversations = [asyncio.create_task(check_in(u)) for u in users]
        done_before_kill = lambda: sum(  # noqa: E731
            any(DONE in m.text for m in server.messages(uid)) for uid in ids
        )
        await server.wait_for(lambda: done_before_kill() >= MEMBERS // 3, timeout=120)
        bot.send_signal(signal.SIGKILL)
        bot.wait(timeout=10)
        killed_at = len(server.calls)
        finished_at_kill = done_before_kill()
        assert finished_at_kill < MEMBERS, "the burst ended before the kill: nothing was tested"

        bot = start_bot(server, database_url, tmp_path)
        await asyncio.wait_for(asyncio.gather(*conversations), timeout=300)
    finally:
        bot.terminate()
        try:
            bot.wait(timeout=15)
        except subprocess.TimeoutExpired:
            bot.kill()
    assert bot.returncode == 0, (tmp_path / "bot.log").read_text()[-3000:]

    engine = create_engine(database_url)
    async with create_session_factory(engine)() as session:
        checkins = (await session.exec(select(CheckIn))).all()
        revisions = (await session.exec(select(func.count()).select_from(CheckInRevision))).one()
        unhandled = (
            await session.exec(
                select(InboundUpdate).where(col(InboundUpdate.handled_at).is_(None))
            )
        ).all()
        journaled = (await session.exec(select(func.count()).select_from(InboundUpdate))).one()
    await engine.dispose()

    assert len(checkins) == MEMBERS and revisions == MEMBERS
    assert all(c.version == 1 for c in checkins), "a confirmation was handled twice"
    assert unhandled == []
    assert journaled == server.last_update_id  # every update pushed was journaled once
    answers = [sum(DONE in m.text for m in server.messages(uid)) for uid in ids]
    assert all(a >= 1 for a in answers), "a member was left without an answer"
    # A reply can repeat only if it was on its way at the kill: sent, but not yet recorded as
    # sent; that is at most one batch's worth.
    repeated = sum(a - 1 for a in answers)
    print(f"kill: {finished_at_kill}/{MEMBERS} done before the kill, {repeated} replies repeated")
    assert repeated <= BATCH_LIMIT, f"{repeated} repeated confirmations"
    assert killed_at < len(server.calls)
