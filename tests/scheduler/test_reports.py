"""What managers receive: the cutoff list of who is still missing, alerts for abnormal
check-ins, the daily report; and rounds that were missed or raced by a second scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, time

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.app import create_couriers
from domain.schedule import ScheduleSpec
from scheduler.rounds import Rounds
from scheduler.sender import Sender
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.models import Outbox
from storage.repo import Repo, RosterRow
from storage.schedules import ScheduleRepo
from tests.fakebot import SentMessage
from tests.scheduler.conftest import MONDAY, SHANGHAI, School
from tests.scheduler.test_reminders import check_in, enrol_all, reminders

MISSING = "截止时仍未打卡"
UNREACHABLE = "联系不上（已屏蔽机器人）"
ALERT = "异常打卡"
REPORT = "日报"

# Managers' Telegram ids.
CLASS_1 = 101  # 工程学院/一班
COLLEGE = 102  # 工程学院
ADMIN = 103  # the whole organisation
CLASS_2 = 104  # 工程学院/二班
ARTS = 105  # 文学院


def with_text(school: School, chat_id: int, needle: str) -> list[SentMessage]:
    return [m for m in school.server.messages(chat_id) if needle in m.text]


def one(school: School, chat_id: int, needle: str) -> str:
    found = with_text(school, chat_id, needle)
    assert len(found) == 1, (chat_id, needle, school.server.transcript(chat_id))
    return found[0].text


async def grant_managers(school: School) -> None:
    await school.grant(CLASS_1, "工程学院/一班")
    await school.grant(COLLEGE, "工程学院")
    await school.grant(ADMIN, None, "admin")
    await school.grant(CLASS_2, "工程学院/二班")
    await school.grant(ARTS, "文学院")


async def add_members(school: School, *rows: tuple[str, str, str, int]) -> None:
    """Extra roster entries (unit, id, name, Telegram id), enrolled."""
    org_id = school.daka.org_ids["school"]
    async with school.daka.sessions() as session:
        repo = Repo(session)
        await repo.members.import_roster(
            org_id=org_id,
            rows=[
                RosterRow(line=100 + i, unit=unit, member_id=external_id, name=name)
                for i, (unit, external_id, name, _) in enumerate(rows)
            ],
        )
        await session.commit()
    for _, external_id, _, telegram_id in rows:
        await school.enrol(telegram_id, external_id)


# ---------------------------------------------------------------------------- cutoff


async def test_the_cutoff_list_shows_each_manager_the_missing_of_their_scope(
    school: School,
) -> None:
    await enrol_all(school)  # 2002 赵六's classmate 孙七 never enrols
    await add_members(school, ("文学院/乙班", "3002", "吴九", 32))
    await grant_managers(school)
    await check_in(school, school.server.user(11))  # 张三
    await check_in(school, school.server.user(31))  # 周八: 文学院/甲班 is complete
    school.server.block(13)  # 王五 blocked the bot
    await school.at("08:00")
    await school.send()
    [cutoff] = await school.at("14:00")
    assert cutoff.slot == "cutoff"
    await school.send()

    class_1 = one(school, CLASS_1, MISSING)
    assert "工程学院/一班：2 人" in class_1
    assert "• 李四 (1002, 工程学院/一班)\n" in class_1 + "\n"
    assert f"• 王五 (1003, 工程学院/一班) — {UNREACHABLE}" in class_1
    for elsewhere in ("张三", "赵六", "孙七", "周八", "吴九"):
        assert elsewhere not in class_1

    college = one(school, COLLEGE, MISSING)
    missing_part, _, not_enrolled_part = college.partition("未加入")
    assert "工程学院：3 人" in missing_part
    for name in ("李四", "王五", "赵六"):
        assert name in missing_part
    for absent in ("张三", "孙七", "周八", "吴九"):  # reported, not enrolled, other college
        assert absent not in missing_part
    # Who never enrolled is listed apart: not missing, and not to be reminded.
    assert "（无法提醒）：1 人" in not_enrolled_part and "孙七 (2002, 工程学院/二班)" in college

    admin = one(school, ADMIN, MISSING)
    assert "第一中学：4 人" in admin
    for name in ("李四", "王五", "赵六", "吴九"):
        assert name in admin
    assert admin.count(UNREACHABLE) == 1
    assert "• 吴九 (3002, 文学院/乙班)" in admin

    class_2 = one(school, CLASS_2, MISSING)
    assert "工程学院/二班：1 人" in class_2 and "赵六" in class_2
    assert UNREACHABLE not in class_2

    arts = one(school, ARTS, MISSING)
    assert "文学院：1 人" in arts and "吴九" in arts and "周八" not in arts

    # Members get no missing list, and nobody gets it twice.
    assert with_text(school, 12, MISSING) == []
    assert await school.at("14:05") == []


async def test_a_complete_scope_gets_a_list_that_says_everybody_checked_in(
    school: School,
) -> None:
    await school.enrol(31, "3001")
    await school.grant(ARTS, "文学院")
    await school.grant(COLLEGE, "工程学院")
    await check_in(school, school.server.user(31))
    await school.at("14:00")
    await school.send()
    arts = one(school, ARTS, MISSING)
    assert "文学院：0 人" in arts
    assert "应报人员已全部打卡" in arts
    # Nobody in 工程学院 has enrolled: nobody is expected there either.
    assert "应报人员已全部打卡" in one(school, COLLEGE, MISSING)


# ---------------------------------------------------------------------------- alerts


async def test_an_abnormal_check_in_alerts_exactly_the_managers_above_the_member(
    school: School,
) -> None:
    await enrol_all(school)
    await grant_managers(school)
    await check_in(school, school.server.user(11), temperature="37.8")
    stats = await school.send()
    assert stats.sent == 3
    for manager in (CLASS_1, COLLEGE, ADMIN):
        alert = one(school, manager, ALERT)
        assert "张三（1001，工程学院/一班）" in alert
        assert "体温: 37.8 °C" in alert
        assert "2026-11-30" in alert
    for manager in (CLASS_2, ARTS):
        assert school.server.messages(manager) == []


async def test_a_normal_check_in_alerts_nobody(school: School) -> None:
    await enrol_all(school)
    await grant_managers(school)
    await check_in(school, school.server.user(12))
    stats = await school.send()
    assert stats.handled == 0
    for manager in (CLASS_1, COLLEGE, ADMIN, CLASS_2, ARTS):
        assert school.server.messages(manager) == []


# ---------------------------------------------------------------------------- reports


async def test_the_daily_report_of_a_college_has_its_classes_and_the_abnormal(
    school: School,
) -> None:
    await enrol_all(school)
    await grant_managers(school)
    await check_in(school, school.server.user(11))  # 张三, normal
    await check_in(school, school.server.user(12), temperature="37.8")  # 李四, abnormal
    await check_in(school, school.server.user(31))  # 周八, 文学院
    [report] = await school.at("15:00")  # nothing ran in between: only the report is due
    assert report.slot == "report"
    await school.send()

    college = one(school, COLLEGE, REPORT)
    lines = college.splitlines()
    assert lines[0] == "📊 2026-11-30 日报 — 第一中学 · 工程学院"
    assert "工程学院：应报 4，已报 2（50%），未报 2，异常 1，请假 0，未加入 1，联系不上 0" in lines
    assert "各单位情况" in lines
    assert "• 一班：应报 3，已报 2（67%），未报 1，异常 1，请假 0，未加入 0，联系不上 0" in lines
    assert "• 二班：应报 1，已报 0（0%），未报 1，异常 0，请假 0，未加入 1，联系不上 0" in lines
    assert "异常名单" in lines
    assert "• 李四 (工程学院/一班): 体温" in lines
    assert "周八" not in college and "文学院" not in college
    assert "零报告" not in college

    admin = one(school, ADMIN, REPORT)
    assert "第一中学 · 整个单位" in admin
    assert "• 工程学院：应报 4，已报 2（50%）" in admin
    assert "• 文学院：应报 1，已报 1（100%）" in admin
    assert "• 李四 (工程学院/一班): 体温" in admin

    arts = one(school, ARTS, REPORT)
    assert "今日无异常打卡" in arts and "李四" not in arts

    class_1 = one(school, CLASS_1, REPORT)
    assert "各单位情况" not in class_1  # a class has no units below it
    assert "工程学院/一班" in class_1 and "• 李四 (工程学院/一班): 体温" in class_1


async def test_a_holiday_still_sends_every_manager_a_zero_report(school: School) -> None:
    await enrol_all(school)
    await school.enrol(22, "2002")  # everyone enrolled: every figure can be zero
    await grant_managers(school)
    async with school.daka.sessions() as session:
        await ScheduleRepo(session).add_holidays(
            org_id=school.daka.org_ids["school"], days=[MONDAY]
        )
        await session.commit()
    assert [r.enqueued for r in await school.at("08:00")] == [0]
    await school.at("14:00")
    [report] = await school.at("15:00")
    assert report.enqueued == 5
    await school.send()
    for manager in (CLASS_1, COLLEGE, ADMIN, CLASS_2, ARTS):
        assert "：0 人\n应报人员已全部打卡" in one(school, manager, MISSING)
        text = one(school, manager, REPORT)
        assert "今天不是打卡日（节假日或休息日）" in text
        assert "零报告：今日各项数字均为 0" in text
        assert "应报 0，已报 0（—），未报 0，异常 0，请假 0，未加入 0，联系不上 0" in text
        assert "今日无异常打卡" in text
    # Nobody was reminded on the holiday.
    for member in (11, 12, 13, 21, 22, 31):
        assert school.server.messages(member) == []


async def test_a_day_off_for_the_whole_schedule_is_a_zero_report_too(school: School) -> None:
    await enrol_all(school)
    await school.grant(ADMIN, None, "admin")
    async with school.daka.sessions() as session:
        await ScheduleRepo(session).put(
            org_id=school.daka.org_ids["school"],
            unit_id=None,
            spec=ScheduleSpec.parse(
                remind="08:00", cutoff="14:00", report="15:00", days="tue-fri"
            ),
        )
        await session.commit()
    await school.at("15:00")  # Monday does not count
    await school.send()
    text = one(school, ADMIN, REPORT)
    assert "今天不是打卡日" in text
    assert "第一中学：应报 0，已报 0（—），未报 0" in text
    # 孙七 never enrolled: not every figure is 0, so the report does not claim a zero report.
    assert "未加入 1" in text and "零报告" not in text


# ---------------------------------------------------------------------------- missed slots


async def test_a_slot_missed_by_less_than_the_grace_runs_once_late(school: School) -> None:
    await enrol_all(school)
    [late] = await school.at("08:20")  # the process was down from 07:59 to 08:20
    assert (late.slot, late.enqueued) == ("remind@08:00", 5)
    assert await school.at("08:25") == []
    assert await school.at("08:40") == []
    await school.send()
    for chat in (11, 12, 13, 21, 31):
        assert len(reminders(school, chat)) == 1


async def test_a_slot_missed_by_more_than_the_grace_is_skipped(school: School) -> None:
    await enrol_all(school)
    assert await school.at("08:31") == []  # down from 07:59 to 08:31
    await school.send()
    assert reminders(school, 12) == []
    [ten] = await school.at("10:00")
    assert (ten.slot, ten.enqueued) == ("remind@10:00", 5)
    await school.send()
    for chat in (11, 12, 13, 21, 31):
        [reminder] = reminders(school, chat)
        assert "2026-11-30" in reminder.text


# ---------------------------------------------------------------------------- two schedulers


@pytest.fixture(params=["one engine", "two engines"])
async def other_sessions(
    request: pytest.FixtureRequest, school: School, migrated_sqlite_url: str
) -> AsyncIterator[SessionFactory]:
    """A second process's view of the database: the same pool, or an engine of its own."""
    if request.param == "one engine":
        yield school.daka.sessions
        return
    engine = create_engine(migrated_sqlite_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def outbox_rows(sessions: SessionFactory, slot: str) -> int:
    async with sessions() as session:
        stmt = select(func.count()).select_from(Outbox).where(Outbox.slot == slot)
        return int((await session.exec(stmt)).one())


def move(school: School, hhmm: str) -> None:
    """Set the clock to local HH:MM on Monday without running anything."""
    hours, minutes = (int(p) for p in hhmm.split(":"))
    school.clock.set(datetime.combine(MONDAY, time(hours, minutes), tzinfo=SHANGHAI))


def sends_to(school: School, chat_id: int) -> int:
    return sum(1 for c in school.server.calls_for(chat_id) if c.method == "sendMessage")


async def test_two_schedulers_on_one_database_send_each_reminder_once(
    school: School, other_sessions: SessionFactory
) -> None:
    await enrol_all(school)
    await school.grant(ADMIN, None, "admin")
    clock = school.clock
    first = Rounds(school.daka.sessions, clock, school.rounds.i18n, school.rounds.channels)
    second = Rounds(other_sessions, clock, school.rounds.i18n, school.rounds.channels)
    move(school, "08:00")
    one_results, other_results = await asyncio.gather(first.tick(), second.tick())
    results = one_results + other_results
    assert [(r.slot, r.enqueued) for r in results] == [("remind@08:00", 5)]
    assert await outbox_rows(school.daka.sessions, "remind@08:00") == 5

    assert school.daka.bot is not None
    senders = [
        Sender(create_couriers(school.daka.bot, send_rate=50), sessions, clock)
        for sessions in (school.daka.sessions, other_sessions)
    ]
    for sender in senders:
        sender.batch = 1  # small batches, so the two senders interleave
    stats = await asyncio.gather(*(s.drain() for s in senders))
    assert sum(s.sent for s in stats) == 5
    for chat in (11, 12, 13, 21, 31):
        assert sends_to(school, chat) == 1
        assert len(reminders(school, chat)) == 1

    # The cutoff raced the same way: one list for the admin.
    move(school, "14:00")
    results = [r for rs in await asyncio.gather(first.tick(), second.tick()) for r in rs]
    assert [r.slot for r in results] == ["cutoff"]
    await asyncio.gather(*(s.drain() for s in senders))
    assert sends_to(school, ADMIN) == 1
