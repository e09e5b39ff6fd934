"""A member withdraws their consent on Telegram, through the real dispatcher and the fake Bot
API: the confirmation, what it means, collection stopping at once, managers seeing it, and a
forged press changing nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import TelegramObject
from sqlalchemy import text
from sqlmodel import col, select

from bot.app import conversation_forgetter
from domain.clock import FixedClock
from handlers.telegram.context import Batch, current_batch
from handlers.telegram.fsm import AfterCommit, DbStorage, redis_storage
from storage.db import create_engine, create_session_factory
from storage.models import AuditEntry, CheckIn, Consent, FsmRecord, Member
from storage.repo import Repo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, grant, reply_containing, running_daka
from tests.handlers.test_checkin import answer_health_form, next_alert

COUNSELOR = 700


async def test_a_member_withdraws_consent_in_the_chat(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    await grant(daka, COUNSELOR, "工程学院/一班")
    zhang = server.user(801, first_name="三", language_code="zh-hans")
    code = await daka.invite()
    await daka.enrol(zhang, "2024001", "张三", code)
    await daka.enrol(server.user(802, language_code="zh-hans"), "2024002", "李四", code)
    zhang.drain()

    confirm = await zhang.ask("/withdraw")
    assert confirm.text.startswith("确定要撤回对第一中学的同意吗？")
    assert "不再打卡，也不再提醒" in confirm.text and "7 天后删除" in confirm.text
    assert confirm.buttons == [["是，撤回我的同意"], ["否，继续参加"]]

    zhang.press_button(confirm, "否，继续参加")
    kept = await reply_containing(zhang, "没有任何变更")
    assert kept.edited and kept.buttons == []

    confirm = await zhang.ask("/withdraw")
    zhang.press_button(confirm, "是，撤回我的同意")
    done = await reply_containing(zhang, "您已撤回对第一中学的同意")
    assert "您的回答将于 2026-12-05 删除。" in done.text
    assert done.reply_markup == {"remove_keyboard": True}  # the check-in menu goes

    refused = await zhang.ask("/checkin")
    assert refused.text == (
        "您已于 2026-11-28 撤回对第一中学的同意，系统不再收集您的打卡信息。"
        "如需重新参加，请联系您的辅导员或村干部。"
    )
    assert "撤回" in (await zhang.ask("✅ 打卡")).text  # the old menu's button too

    counselor = server.user(COUNSELOR, language_code="zh-hans")
    summary = await counselor.ask("/summary")
    assert "已撤回同意 1" in summary.text and "未报 1" in summary.text  # 李四 only
    missing = await counselor.ask("/missing")
    assert "张三" not in missing.text and "李四" in missing.text
    member = await counselor.ask("/member 2024001")
    assert "已于 2026-11-28 撤回同意" in member.text

    await daka.settled()
    async with daka.sessions() as session:
        row = (await session.exec(select(Member).where(Member.external_id == "2024001"))).one()
        consents = (
            await session.exec(
                select(Consent)
                .where(Consent.account_id == row.account_id)
                .order_by(col(Consent.id))
            )
        ).all()
        audit = (await session.exec(select(AuditEntry))).all()
    assert row.withdrawn_at == daka.clock.now() and row.erased_at is None
    assert [c.accepted for c in consents] == [True, False]
    assert ("consent.withdraw", "telegram:801", "2024001") in [
        (a.action, a.actor, a.subject) for a in audit
    ]


async def test_a_forged_withdrawal_press_changes_nothing(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    code = await daka.invite()
    zhang = server.user(801, language_code="en")
    li = server.user(802, language_code="en")
    await daka.enrol(zhang, "2024001", "张三", code)
    await daka.enrol(li, "2024002", "李四", code)
    li_row = await daka.member("2024002")
    zhang.drain()
    chat = await zhang.ask("/help")
    assert "/withdraw — withdraw your consent and stop checking in" in chat.text
    zhang.press(chat, f"wdr:{li_row.id}:1")  # Li Si's enrolment
    assert (await next_alert(zhang)).text == "This button has expired."
    zhang.press(chat, "wdr:x:1")
    assert "expired" in ((await next_alert(zhang)).text or "")
    await daka.settled()
    async with daka.sessions() as session:
        rows = (await session.exec(select(Member))).all()
    assert all(m.withdrawn_at is None for m in rows)


async def test_withdraw_without_an_enrolment(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    stranger = server.user(900, language_code="en")
    said = await stranger.ask("/withdraw")
    assert said.text == "You are not enrolled anywhere, so there is no consent to withdraw."


async def stored_steps(daka: Daka, chat: int) -> list[str]:
    """Everything kept of the chat's conversation: its database row and its Redis values."""
    key = f"fsm:{chat}:{chat}:default"
    async with daka.sessions() as session:
        rows = (await session.exec(select(FsmRecord).where(FsmRecord.key == key))).all()
    kept = [json.dumps([r.state, r.data]) for r in rows]
    if daka.settings.redis_url:
        storage = redis_storage(daka.settings.redis_url)
        try:
            who = StorageKey(bot_id=0, chat_id=chat, user_id=chat)
            kept.append(json.dumps([await storage.get_state(who), await storage.get_data(who)]))
        finally:
            await storage.close()
    return kept


async def bot_sees(daka: Daka, chat: int) -> tuple[str | None, dict[str, Any]]:
    """The step the running bot's storage gives a batch from this chat."""
    assert daka.dp is not None
    storage = daka.dp.fsm.storage
    key = StorageKey(bot_id=0, chat_id=chat, user_id=chat)
    async with daka.sessions() as session:
        batch = Batch(session=session)
        if isinstance(storage, DbStorage):
            await storage.prefetch(batch, [chat])
        token = current_batch.set(batch)
        try:
            return await storage.get_state(key), await storage.get_data(key)
        finally:
            current_batch.reset(token)


async def erase_elsewhere(daka: Daka, external_id: str) -> None:
    """`daka erase` in another process: its own engine, the same steps as bot.cli.privacy."""
    engine = create_engine(daka.settings.database_url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="school")
            member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
            assert member is not None
            now = daka.clock.now()
            await repo.privacy.lock_person(member=member)
            await repo.privacy.withdraw(member=member, org=org, actor="cli", now=now)
            erased = await repo.privacy.erase(member=member, actor="cli", why="test", now=now)
            forget = conversation_forgetter(daka.settings)
            if forget is not None:
                await forget(erased.identities)
            await session.commit()
            if forget is not None:
                await forget(erased.identities)  # again, once committed
    finally:
        await engine.dispose()


async def test_a_draft_erased_by_another_process_is_not_written_back(
    daka: Daka, server: FakeBotAPI
) -> None:
    """Regression ("erased draft brought back by a cache"): the polling bot remembered Zhang's
    draft (where they were) in memory; `daka erase` in another process deleted it; Zhang's
    next messages neither continue that draft nor store it again, not even joining another
    organisation (whose consent step kept the rest of the conversation's data)."""
    await daka.org()
    await daka.org("village", "红旗村")
    zhang = server.user(801, language_code="zh-hans")
    await daka.enrol(zhang, "2024001", "张三", await daka.invite())
    zhang.drain()
    await zhang.ask("/checkin")
    zhang.send_location(31.2304, 121.4737, accuracy=12.5)
    await reply_containing(zhang, "请输入您今天测量的体温")
    await daka.settled()
    assert any("121.4737" in step for step in await stored_steps(daka, 801))

    await erase_elsewhere(daka, "2024001")
    assert not any("121.4737" in step for step in await stored_steps(daka, 801))
    assert await bot_sees(daka, 801) == (None, {})  # what the next message would start from

    answer = await zhang.ask("36.6")  # the temperature the erased draft was waiting for
    assert "您今天是否有以下症状" not in answer.text, answer.text  # no next question
    refused = await zhang.ask("/checkin")
    assert "撤回" in refused.text, refused.text
    notice = await zhang.ask(f"/start {await daka.invite('village')}")
    assert "红旗村" in notice.text, notice.text
    await daka.settled()
    assert not any("121.4737" in step for step in await stored_steps(daka, 801))
    member = await daka.member("2024001")
    async with daka.sessions() as session:
        checkins = (
            await session.exec(select(CheckIn).where(CheckIn.member_id == member.id))
        ).all()
    assert member.erased_at is not None and checkins == []


async def erasure_under_way(url: str, erasing: asyncio.Task[Any]) -> str:
    """Until the erasure has committed ("done"), or waits for a lock the batch holds
    ("waiting", PostgreSQL)."""
    if not url.startswith("postgresql"):
        await erasing
        return "done"
    engine = create_engine(url)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while not erasing.done():
            async with engine.connect() as conn:
                if (await conn.execute(waiting)).scalar_one():
                    return "waiting"
            assert asyncio.get_running_loop().time() < deadline, "erasure neither done nor waiting"
            await asyncio.sleep(0.005)  # another server's progress: nothing to be woken by
        erasing.result()
        return "done"
    finally:
        await engine.dispose()


@dataclass
class Meanwhile:
    """An erasure started while the bot handled an update, and how it went on."""

    task: asyncio.Task[None] | None = None
    then: str = ""  # "done" before the batch wrote, or "waiting" for it


def erase_during(daka: Daka, external_id: str, when: str) -> Meanwhile:
    """`daka erase` in another process, while the bot handles the update whose text (or
    button) is `when`: after the batch read Zhang, before it writes anything."""
    assert daka.dp is not None
    erasure = Meanwhile()

    async def meanwhile(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        said = getattr(event, "text", None) or getattr(event, "data", None) or ""
        if erasure.task is None and when in said:
            erasure.task = asyncio.create_task(erase_elsewhere(daka, external_id))
            erasure.then = await erasure_under_way(daka.settings.database_url, erasure.task)
        return await handler(event, data)

    daka.dp.message.outer_middleware.register(meanwhile)
    daka.dp.callback_query.outer_middleware.register(meanwhile)
    return erasure


def raced(url: str) -> str:
    """How the erasure went on: it committed before the batch wrote ("done", SQLite: the
    batch then ran again), or it waited for the batch's commit ("waiting", PostgreSQL: the
    batch holds Zhang's account) and erased what it wrote."""
    return "waiting" if url.startswith("postgresql") else "done"


@pytest.fixture
async def db_daka(server: FakeBotAPI, clock: FixedClock, database_url: str) -> AsyncIterator[Daka]:
    """The bot with its conversations in the database, on SQLite and on PostgreSQL."""
    async with running_daka(server, clock, database_url) as world:
        yield world


async def test_an_erasure_while_a_batch_is_under_way_leaves_nothing_of_the_member(
    db_daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression ("erasure racing a message"): `daka erase` committed in another process
    after the bot's batch had read Zhang and before it wrote: the batch stored the draft it
    had read plus the new answer, and the check-in Zhang confirmed, with their answers and
    coordinates, after the erasure. Now the batch runs again from what the erasure left
    (SQLite), or the erasure waits for it and erases what it wrote (PostgreSQL)."""
    await db_daka.org()
    zhang = server.user(801, language_code="zh-hans")
    await db_daka.enrol(zhang, "2024001", "张三", await db_daka.invite())
    zhang.drain()
    summary = await answer_health_form(zhang, where=(31.2304, 121.4737), temperature="37.9")
    erasure = erase_during(db_daka, "2024001", "confirm")
    zhang.press_button(summary, "确认提交")
    await db_daka.settled()
    assert erasure.task is not None
    await erasure.task
    assert erasure.then == raced(db_daka.settings.database_url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    member = await db_daka.member("2024001")
    async with db_daka.sessions() as session:
        checkins = (
            await session.exec(select(CheckIn).where(CheckIn.member_id == member.id))
        ).all()
    assert member.erased_at is not None
    assert [(c.answers, c.latitude, c.longitude) for c in checkins] in ([], [({}, None, None)])
    assert not any("121.4737" in step for step in await stored_steps(db_daka, 801))


async def test_a_draft_erased_while_its_answer_is_handled_is_not_written_back(
    db_daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression ("erasure racing a message"): the batch that handled Zhang's temperature had
    read their draft (where they were) before `daka erase` committed elsewhere, and wrote it
    back, with the temperature, after it."""
    await db_daka.org()
    zhang = server.user(801, language_code="zh-hans")
    await db_daka.enrol(zhang, "2024001", "张三", await db_daka.invite())
    zhang.drain()
    await zhang.ask("/checkin")
    zhang.send_location(31.2304, 121.4737, accuracy=12.5)
    await reply_containing(zhang, "请输入您今天测量的体温")
    erasure = erase_during(db_daka, "2024001", "37.9")
    zhang.send("37.9")
    await db_daka.settled()
    assert erasure.task is not None
    await erasure.task
    assert erasure.then == raced(db_daka.settings.database_url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    steps = await stored_steps(db_daka, 801)
    assert not any("121.4737" in step or "37.9" in step for step in steps), steps


async def test_a_draft_in_redis_erased_while_its_answer_is_handled_is_not_written_back(
    daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression ("erasure racing a message", state in Redis): the erasure waited for the
    batch's commit, and cleared Redis, and committed, all before the batch wrote its steps to
    Redis (which it does after its commit): the draft was back. The batch sees the erasure
    that committed since it read Zhang, and clears what it wrote."""
    await daka.org()
    zhang = server.user(801, language_code="zh-hans")
    await daka.enrol(zhang, "2024001", "张三", await daka.invite())
    zhang.drain()
    await zhang.ask("/checkin")
    zhang.send_location(31.2304, 121.4737, accuracy=12.5)
    await reply_containing(zhang, "请输入您今天测量的体温")
    erasure = erase_during(daka, "2024001", "37.9")
    assert daka.dp is not None
    storage = daka.dp.fsm.storage
    if isinstance(storage, AfterCommit):
        apply = storage.apply

        async def late(batch: Batch) -> None:
            if erasure.task is not None:
                await erasure.task  # the erasure commits (and clears Redis) first
            await apply(batch)

        storage.apply = late  # type: ignore[method-assign]
    zhang.send("37.9")
    await daka.settled()
    assert erasure.task is not None
    await erasure.task
    steps = await stored_steps(daka, 801)
    assert not any("121.4737" in step or "37.9" in step for step in steps), steps
    assert erasure.then == raced(daka.settings.database_url)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_member_erased_by_their_own_withdrawal_is_answered_once(
    daka: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """An organisation with no grace period: the withdrawal erases at once, in the member's
    own batch, which is not taken for an erasure elsewhere (run again, and again...)."""
    await daka.org()
    async with daka.sessions() as session:
        org = await Repo(session).orgs.require(slug="school")
        org.withdrawal_grace_days = 0
        session.add(org)
        await session.commit()
    zhang = server.user(801, language_code="zh-hans")
    await daka.enrol(zhang, "2024001", "张三", await daka.invite())
    zhang.drain()
    confirm = await zhang.ask("/withdraw")
    zhang.press_button(confirm, "是，撤回我的同意")
    done = await reply_containing(zhang, "您已撤回对第一中学的同意")
    await daka.settled()
    member = await daka.member("2024001")
    assert member.erased_at is not None, done.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
    async with daka.sessions() as session:
        audit = (await session.exec(select(AuditEntry))).all()
    assert [a.action for a in audit].count("member.erase") == 1
