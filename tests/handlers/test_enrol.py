"""Enrolment stories: invite link, consent, proving who you are, and every refusal."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from domain.delivery import TELEGRAM
from storage.models import Consent, EnrolAttempt, Identity, RoleGrant
from storage.repo import Repo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, reply_containing


async def test_a_student_enrols_through_the_invite_link(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    code = await daka.invite()
    user = server.user(501, first_name="三", language_code="zh-hans")

    notice = await user.ask(f"/start {code}")
    assert "第一中学" in notice.text
    assert "收集" in notice.text and "谁能看到" in notice.text  # what, and who sees it
    assert "• 位置：14 天" in notice.text and "/withdraw" in notice.text  # how long, rights
    assert notice.buttons == [["✅ 同意", "❌ 不同意"]]

    user.press_button(notice, "✅ 同意")
    ask_id = await reply_containing(user, "请发送您的学号")
    assert ask_id.removes_keyboard or ask_id.reply_markup is None

    ask_name = await user.ask("2024 001")  # spaces typed on a phone are fine
    assert "姓名" in ask_name.text
    welcome = await user.ask("张三")
    assert "欢迎" in welcome.text and "张三" in welcome.text
    assert any("打卡" in b for row in welcome.buttons for b in row)  # the persistent menu

    await daka.settled()
    member = await daka.member("2024001")
    assert await daka.telegram_id_of(member.account_id) == 501
    assert member.enrolled_at == daka.clock.now()
    async with daka.sessions() as session:
        consent = (await session.exec(select(Consent))).one()
    assert consent.accepted and consent.version == 2  # the notice stating each period
    assert await daka.telegram_id_of(consent.account_id) == 501


async def test_the_bot_never_reveals_a_name_for_an_id(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    code = await daka.invite()
    user = server.user(502)
    notice = await user.ask(f"/start {code}")
    user.press_button(notice, "✅ 同意")
    await reply_containing(user, "请发送您的学号")
    await user.ask("2024001")
    refusal = await user.ask("李四")  # a real id, the wrong name
    assert "不符" in refusal.text and "张三" not in refusal.text
    assert "学号" in refusal.text  # asks again from the id
    welcome_again = await user.ask("2024002")
    assert "姓名" in welcome_again.text
    welcome = await user.ask("李四")
    assert "欢迎" in welcome.text
    await daka.settled()
    async with daka.sessions() as session:
        outcomes = [a.outcome for a in (await session.exec(select(EnrolAttempt))).all()]
    assert outcomes == ["mismatch", "enrolled"]


async def test_an_id_bound_to_another_account_is_refused_and_recorded(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    code = await daka.invite()
    await daka.enrol(server.user(503), "2024001", "张三", code)
    intruder = server.user(504)
    notice = await intruder.ask(f"/start {code}")
    intruder.press_button(notice, "✅ 同意")
    await reply_containing(intruder, "请发送您的学号")
    await intruder.ask("2024001")
    refusal = await intruder.ask("张三")
    assert "已绑定" in refusal.text
    assert await daka.telegram_id_of((await daka.member("2024001")).account_id) == 503
    await daka.settled()
    async with daka.sessions() as session:
        attempts = (
            await session.exec(
                select(EnrolAttempt)
                .join(Identity, col(Identity.account_id) == col(EnrolAttempt.account_id))
                .where(Identity.channel == TELEGRAM, Identity.external_id == "504")
            )
        ).all()
        audit = await Repo(session).audit.since(
            org_id=daka.org_ids["school"], since=daka.clock.now()
        )
    assert [a.outcome for a in attempts] == ["taken"]
    assert [a.action for a in audit] == ["enrol.refused.taken"]


async def test_repeated_wrong_answers_lock_enrolment_for_a_while(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    code = await daka.invite()
    user = server.user(505)
    notice = await user.ask(f"/start {code}")
    user.press_button(notice, "✅ 同意")
    await reply_containing(user, "请发送您的学号")
    for attempt in range(5):
        await user.ask("2024001")
        answer = await user.ask("不是我")
        if attempt < 4:
            assert "不符" in answer.text
    assert "09:30" in answer.text and "后再试" in answer.text  # locked until local 09:30
    locked = await user.ask(f"/start {code}")
    assert "后再试" in locked.text
    daka.clock.advance(timedelta(minutes=31))
    await daka.enrol(user, "2024001", "张三", code)
    await daka.settled()
    assert await daka.telegram_id_of((await daka.member("2024001")).account_id) == 505


async def test_each_kind_of_bad_invite_gets_its_own_answer(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    expired = await daka.invite(days=1)
    revoked = await daka.invite()
    once = await daka.invite(uses=1)
    await daka.settled()
    async with daka.sessions() as session:
        await Repo(session).invites.revoke(code=revoked, now=daka.clock.now())
        await session.commit()
    await daka.enrol(server.user(506), "2024001", "张三", once)
    daka.clock.advance(timedelta(days=2))
    user = server.user(507)
    answers = {
        "malformed": (await user.ask("/start hello")).text,
        "unknown": (await user.ask("/start " + "x" * 16)).text,
        "expired": (await user.ask(f"/start {expired}")).text,
        "revoked": (await user.ask(f"/start {revoked}")).text,
        "used up": (await user.ask(f"/start {once}")).text,
    }
    assert "不是有效" in answers["malformed"]
    assert "不存在" in answers["unknown"]
    assert "过期" in answers["expired"]
    assert "撤回" in answers["revoked"]
    assert "次数" in answers["used up"]
    assert len(set(answers.values())) == 5


async def test_declining_consent_stores_nothing_but_the_refusal(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    code = await daka.invite()
    user = server.user(508, language_code="en")
    notice = await user.ask(f"/start {code}")
    assert "What we collect" in notice.text
    user.press_button(notice, "decline")
    answer = await reply_containing(user, "Nothing about you")
    assert "invite link again" in answer.text
    await daka.settled()
    async with daka.sessions() as session:
        consents = (await session.exec(select(Consent))).all()
    assert [(await daka.telegram_id_of(c.account_id), c.accepted) for c in consents] == [
        (508, False)
    ]
    assert (await daka.member("2024001")).account_id is None


async def test_a_manager_invite_grants_the_role_over_its_unit(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    code = await daka.invite(role="manager", unit="工程学院/一班", uses=1)
    counselor = server.user(600)
    notice = await counselor.ask(f"/start {code}")
    counselor.press_button(notice, "✅ 同意")
    done = await reply_containing(counselor, "负责人")
    assert "工程学院/一班" in done.text
    await daka.settled()
    async with daka.sessions() as session:
        grants = (await session.exec(select(RoleGrant))).all()
        unit = await Repo(session).units.require(
            org_id=daka.org_ids["school"], name_path="工程学院/一班"
        )
    assert [(await daka.telegram_id_of(g.account_id), g.role, g.unit_id) for g in grants] == [
        (600, "manager", unit.id)
    ]


async def test_an_invite_for_one_class_does_not_enrol_another_class(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    code = await daka.invite(unit="工程学院/一班")
    user = server.user(509)
    notice = await user.ask(f"/start {code}")
    user.press_button(notice, "✅ 同意")
    await reply_containing(user, "请发送您的学号")
    await user.ask("2024003")  # 王五 is in 二班
    refusal = await user.ask("王五")
    assert "不符" in refusal.text
    await daka.settled()
    assert (await daka.member("2024003")).account_id is None


async def test_enrolment_questions_insist_on_text(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    code = await daka.invite()
    user = server.user(510)
    notice = await user.ask(f"/start {code}")
    waiting = await user.ask("hello")  # text instead of pressing the consent buttons
    assert "同意" in waiting.text or "先" in waiting.text
    user.press_button(notice, "✅ 同意")
    await reply_containing(user, "请发送您的学号")
    user.send_sticker()
    again = await user.next_reply()
    assert "学号" in again.text
    cancelled = await user.ask("/cancel")
    assert "已取消" in cancelled.text
