"""Reminder rounds, the cutoff list, alerts and the daily report, as members and managers see
them, against the fake Bot API with a clock the test moves."""

from __future__ import annotations

from datetime import date

from domain.schedule import ScheduleSpec
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from tests.fakebot import FakeUser, SentMessage
from tests.handlers.conftest import reply_containing
from tests.handlers.test_checkin import answer_health_form
from tests.scheduler.conftest import School

TUESDAY = date(2026, 12, 1)

REMINDER = "还没有打卡"


def reminders(school: School, chat_id: int) -> list[SentMessage]:
    return [m for m in school.server.messages(chat_id) if REMINDER in m.text]


async def enrol_all(school: School) -> None:
    for telegram_id, external_id in (
        (11, "1001"),
        (12, "1002"),
        (13, "1003"),
        (21, "2001"),
        (31, "3001"),
    ):
        await school.enrol(telegram_id, external_id)  # 2002 never enrols


async def check_in(school: School, user: FakeUser, temperature: str = "36.5") -> None:
    user.drain()
    summary = await answer_health_form(user, temperature=temperature)
    user.press_button(summary, "确认提交")
    await reply_containing(user, "打卡成功")
    await school.daka.settled()


async def test_a_round_reminds_exactly_the_enrolled_non_reporters(school: School) -> None:
    await enrol_all(school)
    await school.at("07:00")
    await check_in(school, school.server.user(11))
    assert await school.at("07:59") == []
    [result] = await school.at("08:00")
    assert (result.slot, result.enqueued) == ("remind@08:00", 4)
    stats = await school.send()
    assert stats.sent == 4
    for chat in (12, 13, 21, 31):
        [reminder] = reminders(school, chat)
        assert reminder.buttons == [["✅ 立即打卡"]]
    assert reminders(school, 11) == []
    # The button starts today's check-in.
    user = school.server.user(12)
    user.press_button(reminders(school, 12)[0], "立即打卡")
    first = await reply_containing(user, "请发送您当前所在的位置")
    assert first.has_request_location_button


async def test_the_same_slot_never_runs_twice(school: School) -> None:
    await enrol_all(school)
    assert len(await school.at("08:00")) == 1
    assert await school.at("08:05") == []
    await school.send()
    assert len(reminders(school, 12)) == 1


async def test_a_member_who_checks_in_between_slots_is_not_reminded_again(
    school: School,
) -> None:
    await enrol_all(school)
    await school.at("08:00")
    await school.send()
    await school.at("09:00")
    await check_in(school, school.server.user(12))
    [result] = await school.at("10:00")
    assert result.enqueued == 4
    await school.send()
    assert len(reminders(school, 12)) == 1
    assert len(reminders(school, 13)) == 2


async def test_who_checks_in_after_the_round_but_before_the_send_is_skipped(
    school: School,
) -> None:
    await enrol_all(school)
    await school.at("08:00")  # letters are in the outbox, not sent yet
    await check_in(school, school.server.user(13))
    stats = await school.send()
    assert (stats.sent, stats.skipped) == (4, 1)
    assert reminders(school, 13) == []


async def test_excused_members_and_holidays_get_no_reminder(school: School) -> None:
    await enrol_all(school)
    async with school.daka.sessions() as session:
        repo = Repo(session)
        member = await repo.members.by_external(
            org_id=school.daka.org_ids["school"], external_id="1002"
        )
        assert member is not None and member.id is not None
        schedules = ScheduleRepo(session)
        await schedules.excuse(
            org_id=member.org_id,
            member_id=member.id,
            first_day=date(2026, 11, 29),
            last_day=date(2026, 11, 30),
            reason="病假",
            by="test",
            now=school.clock.now(),
        )
        await schedules.add_holidays(org_id=member.org_id, days=[date(2026, 12, 1)])
        await session.commit()
    [monday] = await school.at("08:00")
    assert monday.enqueued == 4  # 1002 is excused
    await school.send()
    assert reminders(school, 12) == []
    [holiday] = await school.at("08:00", on=TUESDAY)
    assert holiday.enqueued == 0
    [wednesday] = await school.at("08:00", on=date(2026, 12, 2))
    assert wednesday.enqueued == 5  # the excuse ended on Monday


async def test_a_holiday_and_a_day_that_does_not_count_send_nothing(school: School) -> None:
    await enrol_all(school)
    async with school.daka.sessions() as session:
        org_id = school.daka.org_ids["school"]
        schedules = ScheduleRepo(session)
        await schedules.add_holidays(org_id=org_id, days=[TUESDAY])
        await schedules.put(
            org_id=org_id,
            unit_id=None,
            spec=ScheduleSpec.parse(
                remind="08:00", cutoff="14:00", report="15:00", days="mon-fri"
            ),
        )
        await session.commit()
    [holiday] = await school.at("08:00", on=TUESDAY)
    [saturday] = await school.at("08:00", on=date(2026, 12, 5))
    [friday] = await school.at("08:00", on=date(2026, 12, 4))
    assert (holiday.enqueued, saturday.enqueued, friday.enqueued) == (0, 0, 5)


async def test_a_units_own_holiday_spares_only_its_subtree(school: School) -> None:
    await enrol_all(school)
    async with school.daka.sessions() as session:
        repo = Repo(session)
        org_id = school.daka.org_ids["school"]
        college = await repo.units.require(org_id=org_id, name_path="工程学院")
        await ScheduleRepo(session).add_holidays(
            org_id=org_id, days=[date(2026, 11, 30)], unit_id=college.id
        )
        await session.commit()
    [monday] = await school.at("08:00")
    assert monday.enqueued == 1  # only 周八 of 文学院; 工程学院 and its classes are off
    await school.send()
    assert len(reminders(school, 31)) == 1
    assert all(reminders(school, chat) == [] for chat in (11, 12, 13, 21))
    [tuesday] = await school.at("08:00", on=TUESDAY)
    assert tuesday.enqueued == 5
