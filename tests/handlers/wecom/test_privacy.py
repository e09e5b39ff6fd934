"""A WeCom member's data erased while one of their turns is under way (`daka erase` in another
process): nothing of theirs is written after the erasure, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlmodel import select

from domain.conversation.io import Input
from domain.conversation.turn import Turn
from storage.db import create_engine, create_session_factory
from storage.models import CheckIn, FsmRecord
from storage.repo import Repo
from tests.handlers.test_privacy import Meanwhile, erasure_under_way, raced
from tests.handlers.wecom.test_conversation import TIANANMEN, bind
from tests.handlers.wecom.world import WeComDaka, WeComMember, texts


async def erase_elsewhere(app: WeComDaka, external_id: str) -> None:
    """`daka erase` in another process: its own engine, the same steps as bot.cli.privacy."""
    engine = create_engine(app.settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="school")
            member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
            assert member is not None
            now = app.clock.now()
            await repo.privacy.lock_person(member=member)
            await repo.privacy.withdraw(member=member, org=org, actor="cli", now=now)
            await repo.privacy.erase(member=member, actor="cli", why="test", now=now)
            await session.commit()
    finally:
        await engine.dispose()


def erase_during(app: WeComDaka, external_id: str, when: str) -> Meanwhile:
    """The erasure, started when the turn of the text `when` has read the member and their
    conversation, before it writes anything."""
    assert app.channel is not None
    turns = app.channel.inbox.turns
    core = turns.converse  # type: ignore[attr-defined]
    erasure = Meanwhile()

    async def converse(turn: Turn, given: Input) -> None:
        if erasure.task is None and when in str(given):
            erasure.task = asyncio.create_task(erase_elsewhere(app, external_id))
            erasure.then = await erasure_under_way(app.settings.database_url, erasure.task)
        await core(turn, given)

    turns.converse = converse  # type: ignore[attr-defined]
    return erasure


async def at_temperature(app: WeComDaka) -> WeComMember:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await zhangsan.says("/checkin")
    asked = await zhangsan.sends_location(*TIANANMEN)
    assert "请输入您今天测量的体温" in texts(asked)
    return zhangsan


async def test_a_draft_erased_while_its_answer_is_handled_is_not_written_back(
    app: WeComDaka, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression ("erasure racing a message"): the turn that handled 张三's temperature had
    read their draft (where they were) before `daka erase` committed elsewhere, and wrote it
    back, with the temperature, after it."""
    zhangsan = await at_temperature(app)
    erasure = erase_during(app, "2024001", "37.9")
    await zhangsan.says("37.9")
    await app.settled()
    assert erasure.task is not None
    await erasure.task
    async with app.sessions() as session:
        rows = (await session.exec(select(FsmRecord))).all()
    kept = [str(r.data) for r in rows]
    assert not any(str(TIANANMEN[1]) in d or "37.9" in d for d in kept), kept
    assert erasure.then == raced(app.settings.database_url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_check_in_confirmed_while_the_member_is_erased_keeps_no_answers(
    app: WeComDaka, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression ("erasure racing a message"): 张三 confirmed their check-in as `daka erase`
    committed elsewhere; the turn stored it, answers and coordinates, after the erasure."""
    zhangsan = await at_temperature(app)
    await zhangsan.says("37.9")
    await zhangsan.ticks("以上都没有")
    await zhangsan.taps("否")
    summary = await zhangsan.taps("⏭ 跳过")
    assert "请核对" in texts(summary)
    erasure = erase_during(app, "2024001", "confirm")
    await zhangsan.taps("✅ 确认提交")
    await app.settled()
    assert erasure.task is not None
    await erasure.task
    async with app.sessions() as session:
        stored = (await session.exec(select(CheckIn))).all()
    assert [(c.answers, c.latitude, c.longitude) for c in stored] in ([], [({}, None, None)])
    assert erasure.then == raced(app.settings.database_url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
