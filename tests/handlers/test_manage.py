"""Managers set their scope's schedule from the chat; members cannot."""

from __future__ import annotations

from sqlmodel import select

from storage.models import AuditEntry, Schedule
from storage.repo import Repo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, reply_containing
from tests.storage.seeding import telegram_account


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


async def test_a_manager_of_several_units_chooses_which_schedule(
    daka: Daka, server: FakeBotAPI
) -> None:
    """Regression: /schedule showed and changed the first grant's unit only."""
    await daka.org()
    async with daka.sessions() as session:
        repo = Repo(session)
        for path in ("工程学院/一班", "Arts/Class A"):
            unit = await repo.units.require(org_id=daka.org_ids["school"], name_path=path)
            await repo.roles.grant(
                org_id=daka.org_ids["school"],
                account_id=await telegram_account(repo, 902, now=daka.clock.now()),
                unit_id=unit.id,
                role="manager",
                now=daka.clock.now(),
            )
        await session.commit()
    cadre = server.user(902)
    which = await cadre.ask("/schedule")
    assert "哪个单位" in which.text and which.buttons == [["Arts/Class A"], ["工程学院/一班"]]
    cadre.press_button(which, "工程学院/一班")
    shown = await cadre.next_reply()
    assert "工程学院/一班的打卡时间安排" in shown.text and "08:00, 10:00, 12:00" in shown.text
    bad = await cadre.ask("/schedule 25:00 14:00 15:00")
    assert "例如" in bad.text and not bad.buttons
    target = await cadre.ask("/schedule 07:30 11:00 16:00 mon-fri")
    assert "用于哪个单位" in target.text
    cadre.press_button(target, "Arts/Class A")
    changed = await cadre.next_reply()
    assert "Arts/Class A" in changed.text and "已更新" in changed.text and "07:30" in changed.text
    cadre.press(target, target.callback_data("工程学院/一班"))  # pressed again: nothing pending
    answer = await cadre.next_callback_answer()
    while not answer.text:
        answer = await cadre.next_callback_answer()
    assert answer.text == "此按钮已失效。"
    await daka.settled()
    async with daka.sessions() as session:
        [schedule] = (await session.exec(select(Schedule))).all()
        arts = await Repo(session).units.require(
            org_id=daka.org_ids["school"], name_path="Arts/Class A"
        )
    assert schedule.unit_id == arts.id and schedule.remind == "07:30"
