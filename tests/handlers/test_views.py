"""Managers' views: summaries rolled up the tree, lists, nudges, one member's days — and nothing
outside their scope, whether asked by command or by a forged button."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from bot.cli import main
from domain.clock import FixedClock
from handlers.views import ListCb, NavCb
from scheduler.sender import Sender
from storage.models import AuditEntry
from storage.repo import Repo
from tests.fakebot import FakeBotAPI, FakeUser
from tests.handlers.conftest import (
    ADMIN,
    CLASS_ONE,
    Daka,
    reply_containing,
    running_daka,
    unit_id,
)


async def test_a_counselor_sees_the_class_and_its_lists(school: Daka, server: FakeBotAPI) -> None:
    counselor = server.user(CLASS_ONE)
    summary = await counselor.ask("/summary")
    assert "工程学院/一班" in summary.text and "2026-11-28" in summary.text
    assert "应报 2，已报 1（50%），未报 1，异常 1" in summary.text
    assert summary.buttons == [["未打卡（1）", "异常（1）"]]  # no children, no way up
    counselor.press_button(summary, "未打卡")
    missing = await counselor.next_reply()
    assert "李四" in missing.text and "王五" not in missing.text and "张三" not in missing.text
    counselor.press_button(missing, "返回统计")
    back = await counselor.next_reply()
    counselor.press_button(back, "异常")
    abnormal = await counselor.next_reply()
    assert "张三" in abnormal.text and "体温" in abnormal.text


async def test_drill_down_across_three_levels_and_back_up(
    school: Daka, server: FakeBotAPI
) -> None:
    admin = server.user(ADMIN)
    top = await admin.ask("/summary")
    assert "第一中学" in top.text and "未加入 1" in top.text  # Alice never enrolled
    admin.press_button(top, "🔎 工程学院")
    college = await admin.next_reply()
    assert "工程学院：应报 3，已报 1" in college.text or "应报 3，已报 1" in college.text
    assert any("🔎 一班" in b for row in college.buttons for b in row)
    admin.press_button(college, "🔎 一班")
    one = await admin.next_reply()
    assert "工程学院/一班" in one.text
    admin.press_button(one, "返回上级")
    up = await admin.next_reply()
    assert "🔎 二班" in str(up.buttons)
    admin.press_button(up, "返回上级")
    again = await admin.next_reply()
    assert "🔎 Arts" in str(again.buttons)


async def test_nothing_outside_the_scope_by_command_or_forged_button(
    school: Daka, server: FakeBotAPI
) -> None:
    counselor = server.user(CLASS_ONE)
    summary = await counselor.ask("/summary")
    class_two = await unit_id(school, "工程学院/二班")
    for forged in (
        NavCb(unit=class_two, day="2026-11-28").pack(),
        NavCb(unit=0, day="2026-11-28").pack(),
        ListCb(kind="missing", unit=class_two, day="2026-11-28").pack(),
        ListCb(kind="secrets", unit=await unit_id(school, "工程学院/一班"), day="x").pack(),
    ):
        counselor.press(summary, forged)
        answer = await counselor.next_callback_answer()
        while not answer.text:
            answer = await counselor.next_callback_answer()
        assert "不在您的管理范围" in answer.text
    refused = await counselor.ask("/member 2024003")
    assert "没有" in refused.text and "王五" not in refused.text
    allowed = await counselor.ask("/member 2024001")
    assert "张三" in allowed.text and "⚠️ 2026-11-28" in allowed.text
    await school.settled()
    async with school.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.view"))
        ).all()
    assert [(a.actor, a.subject) for a in audit] == [(str(CLASS_ONE), "2024001")]


async def test_a_nudge_from_the_missing_list_reaches_the_member(
    school: Daka, server: FakeBotAPI
) -> None:
    counselor = server.user(CLASS_ONE)
    missing = await counselor.ask("/missing")
    counselor.press_button(missing, "提醒 李四")
    answer = await counselor.next_callback_answer()
    while not answer.text:
        answer = await counselor.next_callback_answer()
    assert "已提醒" in answer.text
    await school.settled()
    assert school.bot is not None
    await Sender(school.bot, school.sessions, school.clock, rate=100).drain()
    li = server.user(802)
    reminder = await reply_containing(li, "还没有打卡")
    assert reminder.buttons == [["✅ 立即打卡"]]


async def test_members_have_no_manager_views(school: Daka, server: FakeBotAPI) -> None:
    member: FakeUser = server.user(802)
    for command in ("/summary", "/missing", "/abnormal", "/member 2024001"):
        refused = await member.ask(command)
        assert "仅供" in refused.text, command


async def test_a_manager_invite_installs_the_manager_menu(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    counselor = server.user(710)
    notice = await counselor.ask(f"/start {await daka.invite(role='manager', unit='工程学院')}")
    counselor.press_button(notice, "✅ 同意")
    await reply_containing(counselor, "负责人")
    await daka.settled()
    menu = {c["command"] for c in server.commands({"type": "chat", "chat_id": 710})}
    assert {"summary", "missing", "abnormal", "member", "schedule", "checkin"} <= menu


async def test_roles_granted_and_revoked_on_the_command_line_reach_the_menu(
    daka: Daka, server: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: only an invite used to install the manager menu; a manager granted by
    `daka role grant` never got it and a revoked one kept it."""
    await daka.org()
    monkeypatch.setenv("DATABASE_URL", daka.settings.database_url)
    cadre = server.user(4242, language_code="en")

    def menu() -> set[str]:
        return {c["command"] for c in server.commands({"type": "chat", "chat_id": 4242})}

    grant = ["role", "grant", "school", "4242", "--unit", "工程学院/一班"]
    assert await asyncio.to_thread(main, grant) == 0
    await cadre.ask("/help")
    await daka.settled()
    assert {"summary", "missing", "checkin"} <= menu()
    english = {c["description"] for c in server.commands({"type": "chat", "chat_id": 4242})}
    assert "Who has not checked in" in english

    calls = server.count("setMyCommands")
    await cadre.ask("/help")
    await daka.settled()
    assert server.count("setMyCommands") == calls, "the menu is set once, not on every message"

    assert await asyncio.to_thread(main, ["role", "revoke", "school", "4242"]) == 0
    await cadre.ask("/help")
    await daka.settled()
    assert "summary" not in menu() and "checkin" in menu()


async def test_admin_ids_are_administrators_of_every_organisation(
    server: FakeBotAPI, clock: FixedClock, sqlite_url: str
) -> None:
    async with running_daka(server, clock, sqlite_url, admin_ids=frozenset({9001})) as daka:
        await daka.org()
        boss, stranger = server.user(9001), server.user(9002)
        summary = await boss.ask("/summary")
        assert "第一中学" in summary.text and "🔎 工程学院" in str(summary.buttons)
        await daka.settled()
        menu = {c["command"] for c in server.commands({"type": "chat", "chat_id": 9001})}
        assert "summary" in menu
        refused = await stranger.ask("/summary")
        assert "第一中学" not in refused.text


async def test_an_export_is_a_workbook_of_the_scope_and_is_audited(
    school: Daka, server: FakeBotAPI
) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    counselor = server.user(CLASS_ONE)
    counselor.send("/export")
    await school.settled()  # the file is made after the commit, in a process of its own
    document = await counselor.next_reply()
    assert document.file_name == "daka-2026-11-28-2026-11-28.xlsx"
    book = load_workbook(io.BytesIO(server.file_bytes(document.file_id or "")), read_only=True)
    assert book.sheetnames == ["Summary", "Detail"]
    detail = list(book["Detail"].iter_rows(values_only=True))
    book.close()
    assert detail[0][:11] == (
        "date",
        "unit_path",
        "member_id",
        "name",
        "status",
        "submitted_at",
        "latitude",
        "longitude",
        "place",
        "abnormal",
        "reasons",
    )
    assert sorted((r[2], r[4]) for r in detail[1:]) == [
        ("2024001", "reported"),
        ("2024002", "missing"),
    ]  # class 1 only
    counselor.send("/export csv 2026-11-28")
    await school.settled()
    as_csv = await counselor.next_reply()
    text = server.file_bytes(as_csv.file_id or "").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3 and rows[1][0] == "2026-11-28"
    bad = await counselor.ask("/export 2026-11-28 2025-01-01")
    assert "366" in bad.text
    await school.settled()
    async with school.sessions() as session:
        exports = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "export"))
        ).all()
    assert len(exports) == 2


async def test_a_college_with_many_classes_pages_its_summary(
    daka: Daka, server: FakeBotAPI
) -> None:
    roster = [(f"大学/学院/{i:02d}班", f"S{i:02d}", f"学生{i:02d}") for i in range(30)]
    await daka.org(roster=roster)
    async with daka.sessions() as session:
        repo = Repo(session)
        college = await repo.units.require(org_id=daka.org_ids["school"], name_path="大学/学院")
        await repo.roles.grant(
            org_id=daka.org_ids["school"],
            telegram_id=720,
            unit_id=college.id,
            role="manager",
            now=daka.clock.now(),
        )
        await session.commit()
    dean = server.user(720)
    first = await dean.ask("/summary")
    assert "(1/3)" in first.text and "00班" in first.text and "12班" not in first.text
    assert ["»"] in first.buttons
    dean.press_button(first, "»")
    second = await dean.next_reply()
    assert "(2/3)" in second.text and "12班" in second.text and ["«", "»"] in second.buttons
    assert len(second.text) < 4096
