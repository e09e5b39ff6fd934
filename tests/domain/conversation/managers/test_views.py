"""Managers' views in the core: /summary figures and its drill-down keys, the missing and
abnormal lists with their pages and nudges, /member and /where, over the union of a manager's
grants; days asked about in the manager's language."""

from __future__ import annotations

from sqlmodel import select

from storage.models import AuditEntry, Outbox
from storage.repo import Repo
from tests.domain.conversation.managers.managers_world import (
    ADMIN,
    CLASS_ONE,
    COLLEGE,
    ISO,
    NO_LONGER_VALID,
    UNITS,
    World,
)


async def test_a_counselor_sees_the_class_and_its_lists(world: World) -> None:
    class_one = await world.unit_id("工程学院/一班")
    [summary] = (await world.command(CLASS_ONE, "/summary")).said
    assert summary.how == "say"
    assert summary.text.startswith(f"📊 <b>工程学院/一班</b> — {ISO}")
    assert "应报 2，已报 1（50%），未报 1，异常 1" in summary.text
    assert summary.labels() == ["未打卡（1）", "异常（1）"]  # no children, no way up
    assert summary.keys() == [
        f"lst:missing:{class_one}:{ISO}:0",
        f"lst:abnormal:{class_one}:{ISO}:0",
    ]

    missing = await world.press(CLASS_ONE, summary.keys()[0])
    assert [s.how for s in missing.said] == ["notice", "replace"]
    listed = missing.said[1]
    assert "李四" in listed.text and "王五" not in listed.text and "张三" not in listed.text
    assert listed.text.startswith(f"📋 <b>未打卡名单</b> — {ISO} (1)")
    li = await world.member_id("2024002")
    assert listed.keys() == [f"nud:{li}:{ISO}", f"nav:{class_one}:{ISO}:0"]

    back = await world.press(CLASS_ONE, listed.keys()[-1])
    assert back.said[1].text == summary.text
    abnormal = (await world.press(CLASS_ONE, summary.keys()[1])).said[1]
    assert "张三 (2024001, 工程学院/一班): 体温" in abnormal.text
    assert abnormal.keys() == [f"nav:{class_one}:{ISO}:0"]  # nobody to nudge on it


async def test_drill_down_across_three_levels_and_back_up(world: World) -> None:
    college, class_one = await world.unit_id("工程学院"), await world.unit_id("工程学院/一班")
    [top] = (await world.command(ADMIN, "/summary")).said
    assert "第一中学" in top.text and "未加入 1" in top.text  # Alice never enrolled
    arts = await world.unit_id("Arts")
    assert top.keys()[:2] == [f"nav:{arts}:{ISO}:0", f"nav:{college}:{ISO}:0"]
    assert top.keys()[2:] == [f"lst:missing:0:{ISO}:0", f"lst:abnormal:0:{ISO}:0"]
    down = (await world.press(ADMIN, f"nav:{college}:{ISO}:0")).said[1]
    assert "工程学院：应报 3，已报 1" in down.text and "🔎 一班 (50%)" in down.labels()
    assert down.labels()[-1] == "⬆ 返回上级" and down.keys()[-1] == f"nav:0:{ISO}:0"
    one = (await world.press(ADMIN, f"nav:{class_one}:{ISO}:0")).said[1]
    assert one.keys()[-1] == f"nav:{college}:{ISO}:0"
    # The college's manager reaches the college's top, and no higher.
    [mine] = (await world.command(COLLEGE, "/summary")).said
    assert mine.text.startswith("📊 <b>工程学院</b>") and "⬆ 返回上级" not in mine.labels()
    up = (await world.press(COLLEGE, f"nav:{class_one}:{ISO}:0")).said[1]
    assert up.keys()[-1] == f"nav:{college}:{ISO}:0"


async def test_a_college_with_many_classes_pages_its_summary(world: World) -> None:
    roster = [(f"大学/学院/{i:02d}班", f"S{i:02d}", f"学生{i:02d}") for i in range(30)]
    await world.org("big", "大学", roster)
    await world.grant(720, "大学/学院", slug="big")
    college = await world.unit_id("大学/学院", "big")
    [first] = (await world.command(720, "/summary")).said
    assert "(1/3)" in first.text and "00班" in first.text and "12班" not in first.text
    assert first.options[-2][0].label == "»"
    assert first.options[-2][0].key == f"nav:{college}:{ISO}:1"
    second = (await world.press(720, f"nav:{college}:{ISO}:1")).said[1]
    assert "(2/3)" in second.text and "12班" in second.text
    assert [o.label for o in second.options[-2]] == ["«", "»"]
    past = (await world.press(720, f"nav:{college}:{ISO}:99")).said[1]
    assert "(3/3)" in past.text  # a page past the end: the last


async def test_the_missing_list_pages_by_ten(world: World) -> None:
    roster = [("学院/一班", f"M{i:02d}", f"成员{i:02d}") for i in range(23)]
    await world.org("many", "多人学校", roster)
    await world.grant(721, None, role="admin", slug="many")
    await world.bind(*((5000 + i, f"M{i:02d}") for i in range(23)), slug="many")
    [first] = (await world.command(721, "/missing")).said
    assert first.text.startswith(f"📋 <b>未打卡名单</b> — {ISO} (23)")
    assert first.text.count("\n• ") == 10 and len(first.keys()) == 10 + 2
    assert first.options[-2][0].label == "»"
    third = (await world.press(721, f"lst:missing:0:{ISO}:2")).said[1]
    assert third.text.count("\n• ") == 3 and [o.label for o in third.options[-2]] == ["«"]
    beyond = (await world.press(721, f"lst:missing:0:{ISO}:7")).said[1]
    assert beyond.text.endswith("\n无。") and [o.label for o in beyond.options[0]] == ["«"]


async def test_a_nudge_queues_a_reminder_and_is_audited(world: World) -> None:
    li = await world.member_id("2024002")
    out = await world.press(CLASS_ONE, f"nud:{li}:{ISO}")
    assert [(s.how, s.text, s.alert) for s in out.said] == [("notice", "已提醒 李四。", False)]
    async with world.sessions() as session:
        [letter] = (await session.exec(select(Outbox))).all()
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.nudge"))
        ).all()
    assert letter.kind == "remind" and "还没有打卡" in letter.text
    assert (letter.channel, letter.address) == ("telegram", "802")
    assert letter.options == [[{"label": "✅ 立即打卡", "key": "go"}]]
    assert [(a.actor, a.subject) for a in audit] == [(f"telegram:{CLASS_ONE}", "2024002")]


async def test_an_unreachable_member_is_not_nudged(world: World) -> None:
    async with world.sessions() as session:
        member = await Repo(session).members.by_external(
            org_id=world.org_ids["school"], external_id="2024002"
        )
        assert member is not None
        member.unreachable_since = world.clock.now()
        await session.commit()
    [missing] = (await world.command(CLASS_ONE, "/missing")).said
    assert "李四" in missing.text and "联系不上" in missing.text
    offered = missing.keys()
    assert not [key for key in offered if key.startswith("nud:")]
    li = await world.member_id("2024002")
    out = await world.press(CLASS_ONE, f"nud:{li}:{ISO}")
    assert [(s.text, s.alert) for s in out.said] == [("无法联系到 李四。", True)]
    async with world.sessions() as session:
        assert (await session.exec(select(Outbox))).all() == []


async def test_member_shows_two_weeks_of_the_scope_only(world: World) -> None:
    [zhang] = (await world.command(CLASS_ONE, "/member 2024001")).texts()
    lines = zhang.splitlines()
    assert lines[0] == "<b>张三</b> (2024001, 工程学院/一班)" and len(lines) == 1 + 14
    assert lines[1] == f"⚠️ {ISO} 体温" and lines[2] == "❌ 2026-11-27"
    for who, command in ((CLASS_ONE, "/member 2024003"), (CLASS_ONE, "/member nobody")):
        [refused] = (await world.command(who, command)).texts()
        assert refused.startswith("您的管理范围内没有") and "王五" not in refused
    async with world.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.view"))
        ).all()
    assert [(a.actor, a.subject) for a in audit] == [(f"telegram:{CLASS_ONE}", "2024001")]


async def test_where_counts_the_places_of_the_scope(world: World) -> None:
    [where] = (await world.command(CLASS_ONE, "/where")).texts()
    assert where.startswith(f"📍 <b>打卡地点分布</b> — {ISO}") and "• 北京市: 1" in where
    [elsewhere] = (await world.command(CLASS_ONE, "/where 2026-11-27")).texts()
    assert elsewhere.endswith("\n无。")


async def test_a_manager_of_several_units_reads_all_of_them(world: World) -> None:
    await world.grant(UNITS, "工程学院/一班")
    await world.grant(UNITS, "Arts/Class A")
    [top] = (await world.command(UNITS, "/summary")).said
    assert "第一中学" in top.text and "应报 2，已报 1" in top.text and "未加入 1" in top.text
    assert [label.split(" (")[0] for label in top.labels()[:2]] == [
        "🔎 Arts/Class A",
        "🔎 工程学院/一班",
    ]
    arts = await world.unit_id("Arts/Class A")
    back = (await world.press(UNITS, f"nav:{arts}:{ISO}:0")).said[1]
    assert back.keys()[-1] == f"nav:0:{ISO}:0"  # up to the union of the grants
    [missing] = (await world.command(UNITS, "/missing")).texts()
    assert "李四" in missing and "王五" not in missing
    [where] = (await world.command(UNITS, "/where")).texts()
    assert "北京市: 1" in where
    college = await world.unit_id("工程学院")
    assert (await world.press(UNITS, f"nav:{college}:{ISO}:0")).texts() == [NO_LONGER_VALID]


async def test_far_and_unreadable_days_get_the_window_in_the_managers_language(
    world: World,
) -> None:
    for command in ("/missing 9999-12-31", "/summary 0001-01-01", "/abnormal 2026-02-30"):
        [answer] = (await world.command(CLASS_ONE, command)).texts()
        assert "年-月-日" in answer and "2027-11-29" in answer and "例如 2026-11-28" in answer
    [english] = (await world.command(CLASS_ONE, "/where x", language="en")).texts()
    assert "YYYY-MM-DD" in english and "for example 2026-11-28" in english
