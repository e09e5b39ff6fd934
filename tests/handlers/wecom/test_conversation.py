"""WeCom members as they live it, over real HTTP against the local WeCom: the first message,
consent and binding with an invite code, a check-in by the menu's location picker, card buttons
and a number typed back, the summary confirmed, /today; a member of an organisation shown text
only does the same with numbers; an organisation whose WeCom user ids are its member ids binds
on first contact; and a forged or stale button gets a clear answer."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from domain.delivery import Sent
from domain.keys import CHECKIN_NOW, option
from handlers.wecom.courier import WeComCourier
from storage.models import CheckIn, Member
from tests.handlers.wecom.world import WeComDaka, WeComMember, texts

TIANANMEN = (39.9087, 116.3975)


@dataclass
class Reminder:
    address: str
    text: str
    options: list[list[dict[str, str]]]
    org_id: int = 1


async def bind(member: WeComMember, code: str, external_id: str, name: str) -> None:
    notice = await member.says(f"绑定 {code}")
    assert "个人信息使用说明" in texts(notice)
    await member.taps("✅ 同意")
    await member.says(external_id)
    welcome = await member.says(name)
    assert "欢迎" in texts(welcome)


async def checkins(app: WeComDaka) -> list[CheckIn]:
    async with app.sessions() as session:
        return list((await session.exec(select(CheckIn))).all())


async def test_a_member_enrols_with_a_code_and_checks_in_with_the_picker_cards_and_numbers(
    app: WeComDaka,
) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")

    hello = await zhangsan.says("你好")
    assert len(hello) == 1 and "绑定" in hello[0].text  # how to enrol, not the Telegram link

    notice = await zhangsan.says(f"绑定 {await app.invite()}")
    assert "第一中学" in texts(notice) and "您的企业微信账号 ID" in texts(notice)
    assert notice[0].msgtype == "text" and len(notice[0].text) > 160  # too long for a card
    assert notice[1].buttons == ["✅ 同意", "❌ 不同意"]

    agreed = await zhangsan.taps("✅ 同意")
    assert agreed[0].updated and agreed[0].buttons == ["✔ ✅ 同意"]  # the notice stays
    assert len(agreed) == 2 and "学号" in agreed[1].text
    assert "请发送您的姓名" in texts(await zhangsan.says("2024001"))
    assert "欢迎" in texts(await zhangsan.says("张三"))

    # The menu's 打卡 picker starts today's check-in and answers its location question.
    picked = await zhangsan.picks_location(*TIANANMEN)
    assert "请发送您当前所在的位置" in picked[0].text and "打卡" in picked[0].text
    assert "已收到位置" in picked[1].text and "请输入您今天测量的体温" in picked[1].text

    symptoms = await zhangsan.says("36.6")  # choose several: a vote card, ticked in the client
    assert "您今天是否有以下症状" in symptoms[0].text and len(symptoms) == 1
    assert symptoms[0].choices[0] == "发热" and symptoms[0].choices[-1] == "以上都没有"
    assert symptoms[0].buttons == ["完成 ✔"]
    exposure = await zhangsan.ticks("以上都没有")  # the vote card becomes the next question
    assert len(exposure) == 1 and exposure[0].updated
    assert exposure[0].buttons == ["是", "否"] and "近14天内是否接触过" in exposure[0].text
    assert "✔ 症状: 以上都没有" in exposure[0].text

    photo = await zhangsan.taps("否")  # the card becomes the next question
    assert len(photo) == 1 and photo[0].updated
    assert "如有需要，请上传一张照片" in photo[0].text and photo[0].buttons == ["⏭ 跳过"]

    summary = await zhangsan.taps("⏭ 跳过")
    assert "请核对" in texts(summary) and "36.6" in texts(summary)
    assert zhangsan.last_card().buttons == ["✅ 确认提交", "✏️ 修改回答", "❌ 取消"]

    done = await zhangsan.taps("✅ 确认提交")
    assert "打卡成功" in texts(done)
    assert zhangsan.last_card().buttons == ["✔ ✅ 确认提交"]  # it cannot be pressed twice
    [stored] = await checkins(app)
    assert stored.answers["temperature"] == 36.6 and stored.answers["symptoms"] == ["none"]
    assert stored.answers["exposure"]["yes"] is False and stored.latitude == TIANANMEN[0]

    today = await zhangsan.says("/today")
    assert "已打卡" in texts(today) or "36.6" in texts(today)
    assert texts(await zhangsan.clicks_menu("today")) == texts(today)


async def test_a_wechat_plugin_member_does_it_all_with_numbers(app: WeComDaka) -> None:
    """An organisation shown text only: no card is ever sent; every choice is a number."""
    await app.org(text_only=True)
    await app.start()
    lisi = app.member("lisi")

    notice = await lisi.says(f"bind {await app.invite()}")
    assert "回复 1 ✅ 同意 / 2 ❌ 不同意" in texts(notice)
    assert "学号" in texts(await lisi.says("1"))
    await lisi.says("2024002")
    assert "欢迎" in texts(await lisi.says("李四"))

    first = await lisi.says("打卡")  # the menu's word, typed
    assert "请发送您当前所在的位置" in texts(first)
    await lisi.sends_location(*TIANANMEN, label="天安门")
    symptoms = await lisi.says("36.5")
    assert "8. 完成 ✔" in texts(symptoms) and "1 3" in texts(symptoms)  # ticks, or all at once
    exposure = await lisi.says("7 8")  # 以上都没有, and 完成 needs no number of its own
    assert "✔ 症状: 以上都没有" in texts(exposure) and "回复 1 是 / 2 否" in texts(exposure)
    photo = await lisi.says("2")
    assert "回复 1 ⏭ 跳过" in texts(photo)
    summary = await lisi.says("1")
    assert "回复 1 ✅ 确认提交 / 2 ✏️ 修改回答 / 3 ❌ 取消" in texts(summary)
    assert "打卡成功" in texts(await lisi.says("1"))

    assert all(said.msgtype == "text" for said in lisi.screen())
    [stored] = await checkins(app)
    assert stored.answers["exposure"]["yes"] is False and stored.answers["photo"] is None


async def test_a_number_is_an_answer_only_to_the_options_last_shown(app: WeComDaka) -> None:
    """After the consent, "1" is a member id, not the consent's first option again."""
    await app.org(text_only=True)
    await app.start()
    wangwu = app.member("wangwu")
    await wangwu.says(f"绑定 {await app.invite()}")
    await wangwu.says("1")
    assert "请发送您的姓名" in texts(await wangwu.says("1"))


async def test_userids_are_member_ids_binds_on_first_contact_after_consent(
    app: WeComDaka,
) -> None:
    await app.org(ids_are_member_ids=True)
    await app.start()
    zhaoliu = app.member("zhaoliu")  # the roster says ZhaoLiu: WeCom userids ignore case

    notice = await zhaoliu.says("你好")
    assert "个人信息使用说明" in texts(notice)
    assert notice[-1].buttons == ["✅ 同意", "❌ 不同意"]
    welcome = await zhaoliu.taps("✅ 同意")
    assert "欢迎您，赵六" in texts(welcome)  # no id, no name asked
    async with app.sessions() as session:
        member = (await session.exec(select(Member).where(Member.external_id == "ZhaoLiu"))).one()
    assert member.account_id is not None

    stranger = app.member("nobody")
    refused = await stranger.says("你好")
    assert "不在" in texts(refused) and "名单" in texts(refused)


async def test_a_forged_or_stale_button_gets_a_clear_answer(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await zhangsan.says("/checkin")
    await zhangsan.sends_location(*TIANANMEN)
    await zhangsan.says("36.6")
    await zhangsan.says("7")
    card = (await zhangsan.says("8"))[0]

    forged = await zhangsan.presses(card.task, "sum:deadbeef:confirm")
    assert "按钮已失效" in texts(forged) or "已过期" in texts(forged)
    nonsense = await zhangsan.presses(card.task, "no-such-key")
    assert "已过期" in texts(nonsense) or "失效" in texts(nonsense)
    assert await checkins(app) == []


async def test_an_invite_of_another_organisation_is_refused_by_this_app(app: WeComDaka) -> None:
    await app.org()
    await app.org("village", name="幸福村", served=False)
    await app.start()
    zhangsan = app.member("zhangsan")
    refused = await zhangsan.says(f"绑定 {await app.invite('village')}")
    assert "另一个组织" in texts(refused) or "其他组织" in texts(refused)


async def test_an_app_that_serves_no_organisation_takes_no_invite(app: WeComDaka) -> None:
    await app.org("village", name="幸福村", served=False)
    await app.start()
    zhangsan = app.member("zhangsan")
    refused = await zhangsan.says(f"绑定 {await app.invite('village')}")
    assert "不服务任何组织" in texts(refused)


async def test_a_managers_summary_comes_as_text_with_a_card_to_drill_down(
    app: WeComDaka,
) -> None:
    await app.org()
    await app.grant_manager("boss")
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await zhangsan.picks_location(*TIANANMEN)
    await zhangsan.says("36.6")
    await zhangsan.says("7")
    await zhangsan.says("8")
    await zhangsan.taps("否")
    await zhangsan.taps("⏭ 跳过")
    await zhangsan.taps("✅ 确认提交")
    boss = app.member("boss")

    summary = await boss.clicks_menu("summary")  # the menu's 汇总, as /summary
    assert texts(summary) == texts(await boss.says("/summary"))
    assert "第一中学" in texts(summary) and "已报 1（100%）" in texts(summary)
    card = summary[-1]  # short: the figures are the card's own text; longer, a text before it
    assert card.msgtype == "template_card" and "🔎 工程学院 (100%)" in card.buttons

    unit = await boss.taps("🔎 工程学院 (100%)")
    assert "一班" in texts(unit) and "二班" in texts(unit)

    refused = await zhangsan.says("/summary")
    assert "仅限辅导员" in texts(refused) or "管理" in texts(refused)


async def test_a_reminders_button_starts_the_check_in(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    assert app.channel is not None
    reminder = Reminder(
        "zhangsan", "⏰ 张三，您今天还没有打卡。", [[option("✅ 立即打卡", CHECKIN_NOW)]]
    )
    assert isinstance(await WeComCourier(app.channel.api).deliver(reminder), Sent)

    started = await zhangsan.taps("✅ 立即打卡")
    assert "请发送您当前所在的位置" in texts(started)
    assert zhangsan.last_card().buttons == ["✔ 已回复"]  # a letter's card: answered once
