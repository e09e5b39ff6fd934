"""Managers' changes in the core: /schedule (shown, changed, the unit chosen by a manager of
several), /excuse, and the /roster conversation, each inside the scope and audited."""

from __future__ import annotations

from sqlmodel import select

from domain.conversation import admin
from domain.conversation.admin import ROSTER_WAITING
from domain.conversation.io import Document
from domain.conversation.turn import Turn
from storage.models import AuditEntry, Excuse, Member, Schedule
from storage.scope import Scope
from tests.domain.conversation.managers.managers_world import (
    ADMIN,
    CLASS_ONE,
    NO_LONGER_VALID,
    UNITS,
    World,
)


async def test_a_counselor_views_and_changes_the_schedule_of_the_class(world: World) -> None:
    [shown] = (await world.command(CLASS_ONE, "/schedule")).texts()
    assert "工程学院/一班" in shown and "08:00, 10:00, 12:00" in shown
    assert "/schedule 08:00,10:00,12:00 14:00 15:00 mon-fri" in shown
    [bad] = (await world.command(CLASS_ONE, "/schedule 25:00 14:00 15:00")).texts()
    assert "例如" in bad
    [changed] = (
        await world.command(CLASS_ONE, "/schedule 07:30,09:00 11:00 16:00 mon-fri")
    ).texts()
    assert "已更新" in changed and "07:30, 09:00" in changed and "mon,tue,wed,thu,fri" in changed
    async with world.sessions() as session:
        [schedule] = (await session.exec(select(Schedule))).all()
        [entry] = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "schedule.set"))
        ).all()
    assert schedule.unit_id == await world.unit_id("工程学院/一班")
    assert (schedule.remind, schedule.cutoff, schedule.report) == ("07:30,09:00", "11:00", "16:00")
    assert (entry.actor, entry.subject) == (f"telegram:{CLASS_ONE}", "工程学院/一班")


async def test_an_administrator_sets_the_organisations_schedule(world: World) -> None:
    [changed] = (await world.command(ADMIN, "/schedule 07:00 11:00 16:00")).texts()
    assert "第一中学" in changed and "已更新" in changed
    async with world.sessions() as session:
        [schedule] = (await session.exec(select(Schedule))).all()
    assert schedule.unit_id is None


async def test_a_manager_of_several_units_chooses_which_schedule(world: World) -> None:
    await world.grant(UNITS, "工程学院/一班")
    await world.grant(UNITS, "Arts/Class A")
    arts, class_one = await world.unit_id("Arts/Class A"), await world.unit_id("工程学院/一班")
    [which] = (await world.command(UNITS, "/schedule")).said
    assert "哪个单位" in which.text and which.labels() == ["Arts/Class A", "工程学院/一班"]
    assert which.keys() == [f"sch:{arts}:0", f"sch:{class_one}:0"]
    shown = await world.press(UNITS, f"sch:{class_one}:0")
    assert [s.how for s in shown.said] == ["notice", "replace"]
    assert "工程学院/一班的打卡时间安排" in shown.said[1].text

    [target] = (await world.command(UNITS, "/schedule 07:30 11:00 16:00 mon-fri")).said
    assert "用于哪个单位" in target.text and target.keys() == [
        f"sch:{arts}:1",
        f"sch:{class_one}:1",
    ]
    assert world.state(UNITS).data == {"schedule": "07:30 11:00 16:00 mon-fri"}
    changed = (await world.press(UNITS, f"sch:{arts}:1")).said[1]
    assert "Arts/Class A" in changed.text and "已更新" in changed.text
    assert (await world.press(UNITS, f"sch:{class_one}:1")).texts() == [NO_LONGER_VALID]
    async with world.sessions() as session:
        [schedule] = (await session.exec(select(Schedule))).all()
    assert schedule.unit_id == arts and schedule.remind == "07:30"
    # A unit inside a grant is not one of the units granted: its schedule is not chosen here.
    college = await world.unit_id("工程学院")
    assert (await world.press(UNITS, f"sch:{college}:0")).texts() == [NO_LONGER_VALID]


async def test_a_counselor_excuses_a_member_of_the_class_only(world: World) -> None:
    [done] = (await world.command(CLASS_ONE, "/excuse 2024002 2026-11-28 2026-11-29 病假")).texts()
    assert "李四" in done and "病假" in done
    [outside] = (
        await world.command(CLASS_ONE, "/excuse 2024003 2026-11-28 2026-11-29 病假")
    ).texts()
    assert outside.startswith("您的管理范围内没有")
    for args in (
        "2024002 2026-11-29 2026-11-28 反了",
        "2024002",
        "2024002 2027-12-01 2027-12-01 x",
    ):
        [usage] = (await world.command(CLASS_ONE, f"/excuse {args}")).texts()
        assert "用法" in usage, args
    [summary] = (await world.command(CLASS_ONE, "/summary")).texts()
    assert "请假 1" in summary and "未报 0" in summary
    async with world.sessions() as session:
        assert len((await session.exec(select(Excuse))).all()) == 1
        audit = (await session.exec(select(AuditEntry).where(AuditEntry.action == "excuse"))).all()
    assert [(a.actor, a.subject) for a in audit] == [(f"telegram:{CLASS_ONE}", "2024002")]


def uploaded(content: bytes) -> admin.Fetch:
    async def fetch(document: Document) -> bytes:
        return content

    return fetch


async def send_file(world: World, who: int, document: Document, content: bytes) -> list[str]:
    async def call(turn: Turn, scope: Scope | None) -> None:
        assert scope is not None
        await admin.on_roster_file(turn, scope, document, uploaded(content))

    return (await world.turn(who, call)).texts()


async def test_a_roster_upload_adds_updates_and_rejects_by_line(world: World) -> None:
    [prompt] = (await world.command(CLASS_ONE, "/roster")).texts()
    assert ".csv" in prompt and world.state(CLASS_ONE).state == ROSTER_WAITING
    content = (
        "unit,member_id,name\n"
        "工程学院/一班,2024009,赵九\n"
        "工程学院/一班,2024002,李肆\n"
        "工程学院/二班,2024010,钱十\n"  # a unit outside
        "工程学院/一班,2024003,王五\n"  # class two's member
        "工程学院/一班,,无名\n"
    ).encode()
    [result] = await send_file(
        world, CLASS_ONE, Document("f1", "roster.csv", len(content)), content
    )
    assert result.startswith("名单导入：新增 1 人，更新 1 人，拒绝 3 行。")
    assert "第 4 行：不在您的管理范围内" in result and "第 5 行：不在您的管理范围内" in result
    assert "第 6 行" in result and "二班" not in result
    assert world.state(CLASS_ONE).state is None
    async with world.sessions() as session:
        names = {m.external_id: m.name for m in (await session.exec(select(Member))).all()}
        [entry] = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "roster.upload"))
        ).all()
    assert names["2024009"] == "赵九" and names["2024002"] == "李肆" and "2024010" not in names
    assert names["2024003"] == "王五"
    assert (entry.subject, entry.detail) == ("roster.csv", "1 added, 1 updated")


async def test_a_roster_file_too_large_or_unreadable_is_refused(world: World) -> None:
    await world.command(CLASS_ONE, "/roster")
    huge = Document("f2", "roster.csv", admin.MAX_ROSTER_BYTES + 1)
    assert await send_file(world, CLASS_ONE, huge, b"") == ["文件过大（最大 5 MB）。"]
    [unreadable] = await send_file(world, CLASS_ONE, Document("f3", "roster.pdf", 3), b"%PDF")
    assert unreadable.startswith("无法读取该文件")
    assert world.state(CLASS_ONE).state == ROSTER_WAITING  # still waiting for a file

    async def other(turn: Turn, scope: Scope | None) -> None:
        await admin.on_roster_other(turn)

    assert (await world.turn(CLASS_ONE, other)).texts() == [
        "请以文件形式（.csv 或 .xlsx）发送名单，或发送 /cancel 取消。"
    ]
