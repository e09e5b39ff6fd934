"""Managers' views: summaries rolled up the tree, lists, nudges, one member's days — and nothing
outside their scope, whether asked by command or by a forged button."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, date, datetime

import pytest
from sqlmodel import select

from bot.app import create_couriers
from bot.cli import main
from domain.clock import FixedClock
from domain.delivery import TELEGRAM
from handlers.telegram.keyboards import ListCb, NavCb, NudgeCb, OrgCb, ScheduleCb
from scheduler.sender import Sender
from storage.models import AuditEntry, Outbox
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage
from tests.handlers.conftest import (
    ADMIN,
    CLASS_ONE,
    Daka,
    grant,
    reply_containing,
    running_daka,
)
from tests.storage.seeding import telegram_account


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


async def test_a_check_in_on_the_class_s_day_off_is_counted_apart(
    school: Daka, server: FakeBotAPI
) -> None:
    """Regression (issue 16): the class turns out to be on holiday today, and 张三 had checked
    in anyway, with a fever. Nobody of the class is expected, so there is no rate (it read
    100 % with 张三 alone); the check-in is named apart and the fever is still listed."""
    async with school.sessions() as session:
        class_one = await Repo(session).units.require(
            org_id=school.org_ids["school"], name_path="工程学院/一班"
        )
        await ScheduleRepo(session).add_holidays(
            org_id=school.org_ids["school"], days=[date(2026, 11, 28)], unit_id=class_one.id
        )
        await session.commit()
    counselor = server.user(CLASS_ONE)
    summary = await counselor.ask("/summary")
    assert "应报 0，已报 0（—），未报 0，异常 1" in summary.text
    assert "休息日仍打卡 1" in summary.text
    counselor.press_button(summary, "异常")
    abnormal = await counselor.next_reply()
    assert "张三" in abnormal.text and "体温" in abnormal.text
    # The school expects only 王五 of 二班 (Alice never enrolled): 张三 is not among them.
    whole = await server.user(ADMIN).ask("/summary")
    assert "第一中学：应报 1，已报 0（0%），未报 1，异常 1" in whole.text


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
    class_two = await school.unit_id("工程学院/二班")
    for forged in (
        NavCb(unit=class_two, day="2026-11-28").pack(),
        ListCb(kind="missing", unit=class_two, day="2026-11-28").pack(),
        f"lst:secrets:{await school.unit_id('工程学院/一班')}:x:0",
    ):
        counselor.press(summary, forged)
        answer = await counselor.next_callback_answer()
        while not answer.text:
            answer = await counselor.next_callback_answer()
        assert answer.text == "此按钮已失效。"
    refused = await counselor.ask("/member 2024003")
    assert "没有" in refused.text and "王五" not in refused.text
    allowed = await counselor.ask("/member 2024001")
    assert "张三" in allowed.text and "⚠️ 2026-11-28" in allowed.text
    await school.settled()
    async with school.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.view"))
        ).all()
    assert [(a.actor, a.subject) for a in audit] == [(f"telegram:{CLASS_ONE}", "2024001")]


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
    couriers = create_couriers(school.bot, send_rate=100)
    await Sender(couriers, school.sessions, school.clock).drain()
    li = server.user(802)
    reminder = await reply_containing(li, "还没有打卡")
    assert reminder.buttons == [["✅ 立即打卡"]]


async def test_a_nudge_speaks_the_members_language_not_the_managers(
    school: Daka, server: FakeBotAPI
) -> None:
    """Regression: a nudge's reminder was written in the language of the manager who pressed
    the button, not in the member's."""
    async with school.sessions() as session:
        account = await Repo(session).accounts.by_identity(
            channel=TELEGRAM, external_id=str(CLASS_ONE)
        )
        assert account is not None
        account.language = "en"
        await session.commit()
    counselor = server.user(CLASS_ONE, language_code="en")
    missing = await counselor.ask("/missing")
    counselor.press_button(missing, "Nudge 李四")
    answer = await counselor.next_callback_answer()
    while not answer.text:
        answer = await counselor.next_callback_answer()
    assert answer.text == "Reminder sent to 李四."
    await school.settled()
    assert school.bot is not None
    couriers = create_couriers(school.bot, send_rate=100)
    await Sender(couriers, school.sessions, school.clock).drain()
    reminder = await reply_containing(server.user(802), "还没有打卡")
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
    server: FakeBotAPI, clock: FixedClock, migrated_sqlite_url: str
) -> None:
    admins = frozenset({9001})
    async with running_daka(server, clock, migrated_sqlite_url, admin_ids=admins) as daka:
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
    # A workbook for people: the organisation's language, dates as dates.
    assert book.sheetnames == ["汇总", "明细"]
    detail = list(book["明细"].iter_rows(values_only=True))
    summary = list(book["汇总"].iter_rows(values_only=True))
    book.close()
    assert detail[0][:11] == (
        "日期",
        "单位",
        "学号/编号",
        "姓名",
        "状态",
        "提交时间",
        "纬度",
        "经度",
        "地点",
        "异常",
        "异常项",
    )
    assert sorted((r[2], r[4]) for r in detail[1:]) == [
        ("2024001", "已打卡"),
        ("2024002", "未打卡"),
    ]  # class 1 only
    assert {r[0] for r in detail[1:]} == {datetime(2026, 11, 28)}
    assert summary[-1][1] == "合计"
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
            account_id=await telegram_account(repo, 720, now=daka.clock.now()),
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


SECRET_ROSTER = [("机密学院/机密班", "S001", "赵机密")]
NO_LONGER_VALID = "此按钮已失效。"


async def press_all(
    daka: Daka, server: FakeBotAPI, user: FakeUser, on: SentMessage, datas: list[str]
) -> list[str | None]:
    """Press each forged button on `on`; the answers, after checking that each press got
    exactly one answer and that nothing was sent or edited in the chat meanwhile."""
    await daka.settled()
    outputs, answers = len(server.outputs(user.chat_id)), len(server.callback_answers)
    said: list[str | None] = []
    for data in datas:
        user.press(on, data)
        await daka.settled()
        assert len(server.callback_answers) == answers + len(said) + 1, data
        said.append(server.callback_answers[-1].text)
    assert len(server.outputs(user.chat_id)) == outputs, server.outputs(user.chat_id)[outputs:]
    return said


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_admin_pressing_another_organisations_buttons_reads_nothing(
    school: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: an organisation-wide admin got the summary of any unit id in a button,
    another organisation's included (its units' names and figures)."""
    await school.org("other", name="第二中学", roster=SECRET_ROSTER)
    college = await school.unit_id("机密学院", "other")
    secret_class = await school.unit_id("机密学院/机密班", "other")
    secret_member = (await school.member("S001", "other")).id or 0
    admin = server.user(ADMIN)
    summary = await admin.ask("/summary")
    forged = [
        NavCb(unit=college, day="2026-11-28").pack(),
        NavCb(unit=secret_class, day="2026-11-28", page=1).pack(),
        ListCb(kind="missing", unit=secret_class, day="2026-11-28").pack(),
        ListCb(kind="abnormal", unit=college, day="2026-11-28").pack(),
        NudgeCb(member=secret_member, day="2026-11-28").pack(),
        ScheduleCb(unit=college).pack(),
        OrgCb(org=school.org_ids["other"]).pack(),
    ]
    assert await press_all(school, server, admin, summary, forged) == [NO_LONGER_VALID] * len(
        forged
    )
    said = json.dumps([c.params for c in server.calls], ensure_ascii=False)
    assert not any(secret in said for secret in ("第二中学", "机密", "赵机密", "S001"))
    async with school.sessions() as session:
        nudges = (await session.exec(select(Outbox).where(Outbox.kind == "remind"))).all()
    assert nudges == []
    assert errors_logged(caplog) == []


async def test_tampered_and_stale_buttons_get_one_answer_and_nothing_else(
    school: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    admin, counselor = server.user(ADMIN), server.user(CLASS_ONE)
    summary = await admin.ask("/summary")
    li = (await school.member("2024002")).id or 0
    wang = (await school.member("2024003")).id or 0
    tampered = [
        "nav:99999999999999999999999:2026-11-28:0",  # beyond 64 bits
        "nav:2147483648:2026-11-28:0",  # beyond the database's ids
        "nav:-1:2026-11-28:0",
        "nav:987654:2026-11-28:0",  # no such unit
        "nav:0:2026-11-28:-1",
        "nav:0:2026-11-28:99999999999999999999",
        "nav:0:9999-12-31:0",
        "nav:0:0001-01-01:0",
        "nav:0:2026-02-30:0",
        "nav:0:x:0",
        "nav:0:2026-11-28:0:extra",
        "nav:",
        "lst:secrets:0:2026-11-28:0",
        "lst:missing:0:9999-12-31:0",
        "lst:abnormal:0:2026-11-28:100001",
        "lst:missing:99999999999:2026-11-28:0",
        "nud:99999999999999999999:2026-11-28",
        "nud:987654:2026-11-28",
        f"nud:{li}:9999-12-31",
        f"nud:{li}:0001-01-01",
        "org:5",  # one organisation: nothing to choose
        "org:x",
        "sch:1:1",  # an administrator's schedule is the organisation's
    ]
    answers = await press_all(school, server, admin, summary, tampered)
    assert answers == [NO_LONGER_VALID] * len(tampered)
    # A counselor's buttons over another class, or their own class pressed by a member.
    mine = await counselor.ask("/missing")
    other_class = await school.unit_id("工程学院/二班")
    outside = [
        NudgeCb(member=wang, day="2026-11-28").pack(),
        NavCb(unit=other_class, day="2026-11-28").pack(),
        ScheduleCb(unit=other_class, put=True).pack(),
    ]
    assert await press_all(school, server, counselor, mine, outside) == [NO_LONGER_VALID] * 3
    member = server.user(802)
    own = member.last_message()
    assert await press_all(school, server, member, own, [mine.callback_data("« 返回统计")]) == [
        NO_LONGER_VALID
    ]
    assert errors_logged(caplog) == []


async def test_far_and_unreadable_dates_in_commands_get_a_clear_answer(
    school: Daka, server: FakeBotAPI, caplog: pytest.LogCaptureFixture
) -> None:
    counselor = server.user(CLASS_ONE)
    for command in (
        "/missing 9999-12-31",
        "/summary 0001-01-01",
        "/abnormal 2026-02-30",
        "/where 9999-12-31",
    ):
        answer = await counselor.ask(command)
        assert "年-月-日" in answer.text and "2016-" in answer.text, (command, answer.text)
        assert "2027-11-29" in answer.text and "例如 2026-11-28" in answer.text
    english = server.user(ADMIN, language_code="en")
    await school.settled()
    async with school.sessions() as session:
        account = await Repo(session).accounts.ensure(
            channel=TELEGRAM, external_id=str(ADMIN), now=school.clock.now()
        )
        account.language = "en"
        await session.commit()
    answer = await english.ask("/missing 9999-12-31")
    assert "YYYY-MM-DD" in answer.text and "for example 2026-11-28" in answer.text
    export = await counselor.ask("/export 9999-12-30 9999-12-31")
    assert "/export" in export.text and not export.document
    excuse = await counselor.ask("/excuse 2024002 9999-12-30 9999-12-31 假")
    assert "用法" in excuse.text
    assert errors_logged(caplog) == []


async def test_a_manager_of_several_units_reads_all_of_them(
    school: Daka, server: FakeBotAPI
) -> None:
    """Regression: a manager with grants over several units saw only the first one."""
    await grant(school, 730, "工程学院/一班", "Arts/Class A")
    await school.org("other", name="第二中学", roster=[("Arts/Class A", "B1", "Bob")])
    cadre = server.user(730)
    top = await cadre.ask("/summary")
    assert "第一中学" in top.text and "应报 2，已报 1" in top.text and "未加入 1" in top.text
    assert [row[0].split(" (")[0] for row in top.buttons[:2]] == [
        "🔎 Arts/Class A",
        "🔎 工程学院/一班",
    ]
    assert top.buttons[2] == ["未打卡（1）", "异常（1）"]
    cadre.press_button(top, "🔎 Arts/Class A")
    arts = await cadre.next_reply()
    assert "Arts/Class A" in arts.text and "未加入 1" in arts.text
    cadre.press_button(arts, "返回上级")
    again = await cadre.next_reply()
    assert "🔎 工程学院/一班" in str(again.buttons) and "工程学院/二班" not in again.text
    missing = await cadre.ask("/missing")
    assert "李四" in missing.text and "王五" not in missing.text
    abnormal = await cadre.ask("/abnormal")
    assert "张三" in abnormal.text
    where = await cadre.ask("/where")
    assert "北京市: 1" in where.text
    document = await cadre.ask("/export csv", timeout=60)  # made in a process of its own
    rows = server.file_bytes(document.file_id or "").decode("utf-8-sig").splitlines()[1:]
    assert sorted(r.split(",")[2] for r in rows) == ["2024001", "2024002", "A100"]
    assert "B1" not in str(rows)  # the same unit path in another organisation
    refused = await cadre.ask("/member 2024003")
    assert "王五" not in refused.text
    await school.settled()
    async with school.sessions() as session:
        [export] = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "export"))
        ).all()
    ids = sorted([await school.unit_id("工程学院/一班"), await school.unit_id("Arts/Class A")])
    assert sorted(int(i) for i in (export.subject or "").split(",")) == ids


async def test_a_manager_of_two_organisations_chooses_where_to_work(
    server: FakeBotAPI, clock: FixedClock, migrated_sqlite_url: str
) -> None:
    admins = frozenset({9001})
    async with running_daka(server, clock, migrated_sqlite_url, admin_ids=admins) as daka:
        await daka.org()
        await daka.org("village", name="第二村", roster=[("一组", "V1", "村民甲")])
        boss = server.user(9001)
        choice = await boss.ask("/summary")
        assert "管理多个组织" in choice.text
        assert choice.buttons == [["🏫 第一中学"], ["🏫 第二村"]]
        also = await boss.ask("/missing")  # every manager command waits for the choice
        assert also.buttons == choice.buttons
        boss.press_button(choice, "🏫 第二村")
        chosen = await boss.next_reply()
        assert "已切换到第二村" in chosen.text
        village = await boss.ask("/summary")
        assert "第二村" in village.text and "🔎 一组" in str(village.buttons)
        assert "第一中学" not in village.text and ["🏫 切换组织"] in village.buttons
        missing = await boss.ask("/missing")
        assert "村民甲" not in missing.text  # not enrolled: not missing
        boss.press_button(village, "🏫 切换组织")
        again = await reply_containing(boss, "管理多个组织")
        boss.press_button(again, "🏫 第一中学")
        await reply_containing(boss, "已切换到第一中学")
        school = await boss.ask("/summary")
        assert "第一中学" in school.text and "🔎 工程学院" in str(school.buttons)
        # A button of the other organisation, kept from before the switch, is no longer valid.
        assert await press_all(daka, server, boss, school, [village.callback_data("🔎 一组")]) == [
            NO_LONGER_VALID
        ]


async def test_today_is_the_organisations_day_not_the_servers(
    school: Daka, server: FakeBotAPI
) -> None:
    """At 00:30 in Shanghai it is still the day before in UTC (and on a server elsewhere)."""
    school.clock.set(datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    counselor = server.user(CLASS_ONE)
    summary = await counselor.ask("/summary")
    assert "2026-11-29" in summary.text
    # The window of days is counted from the organisation's day too: a year after 11-29.
    excused = await counselor.ask("/excuse 2024002 2027-11-30 2027-11-30 病假")
    assert "李四" in excused.text
    refused = await counselor.ask("/excuse 2024002 2027-12-01 2027-12-01 病假")
    assert "用法" in refused.text
