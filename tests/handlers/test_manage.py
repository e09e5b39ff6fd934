"""Managers set their scope's schedule from the chat; members cannot."""

from __future__ import annotations

from sqlmodel import select

from storage.models import AuditEntry, Schedule
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, reply_containing


async def test_a_counselor_views_and_changes_the_schedule_of_the_class(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    counselor = server.user(900)
    notice = await counselor.ask(
        f"/start {await daka.invite(role='manager', unit='工程学院/一班')}"
    )
    counselor.press_button(notice, "✅ 同意")
    await reply_containing(counselor, "负责人")
    shown = await counselor.ask("/schedule")
    assert "工程学院/一班" in shown.text and "08:00, 10:00, 12:00" in shown.text
    assert "/schedule 08:00,10:00,12:00 14:00 15:00 mon-fri" in shown.text  # how to change it
    bad = await counselor.ask("/schedule 25:00 14:00 15:00")
    assert "例如" in bad.text
    changed = await counselor.ask("/schedule 07:30,09:00 11:00 16:00 mon-fri")
    assert "已更新" in changed.text and "07:30, 09:00" in changed.text
    assert "mon,tue,wed,thu,fri" in changed.text
    await daka.settled()
    async with daka.sessions() as session:
        [schedule] = (await session.exec(select(Schedule))).all()
        audit = (await session.exec(select(AuditEntry))).all()
    assert schedule.unit_id is not None and schedule.remind == "07:30,09:00"
    assert (schedule.cutoff, schedule.report, schedule.days) == (
        "11:00",
        "16:00",
        "mon,tue,wed,thu,fri",
    )
    assert [a.action for a in audit][-1] == "schedule.set"


async def test_members_cannot_change_the_schedule(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    member = server.user(901)
    await daka.enrol(member, "2024001", "张三", await daka.invite())
    refused = await member.ask("/schedule 07:00 11:00 16:00")
    assert "仅供" in refused.text
    await daka.settled()
    async with daka.sessions() as session:
        assert (await session.exec(select(Schedule))).all() == []
