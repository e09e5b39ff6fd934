"""A member withdraws their consent on Telegram, through the real dispatcher and the fake Bot
API: the confirmation, what it means, collection stopping at once, managers seeing it, and a
forged press changing nothing."""

from __future__ import annotations

from sqlmodel import col, select

from storage.models import AuditEntry, Consent, Member
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, grant, reply_containing
from tests.handlers.test_checkin import next_alert

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
