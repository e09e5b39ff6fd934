"""The rest of the day on WeCom, over real HTTP against the local WeCom: a member amends
today's check-in; a reminder round reaches a WeCom member and its button starts the check-in;
a fever alerts the member's manager on WeCom; a manager's /export comes as a file and /trend
as an image; and one organisation with a member on Telegram and one on WeCom is counted whole
in the manager's /summary and in the daily report."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlmodel import select

from bot.app import channels_of, create_couriers
from bot.wecom import courier
from domain.delivery import TELEGRAM
from domain.i18n import create_translator
from handlers.wecom.messages import CHANNEL
from scheduler.couriers import Courier
from scheduler.rounds import Rounds
from scheduler.sender import Sender
from storage.models import CheckIn, CheckInRevision, Identity
from storage.repo import Repo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import reply_containing, running_daka
from tests.handlers.test_checkin import answer_health_form
from tests.handlers.wecom.test_conversation import TIANANMEN, bind, checkins
from tests.handlers.wecom.world import AGENT, Said, WeComDaka, WeComMember, texts
from tests.storage.seeding import telegram_account

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY = datetime(2026, 11, 28).date()  # the tests' clock's day (09:00 in Shanghai)
BOSS_ON_TELEGRAM = 102


async def check_in(member: WeComMember, temperature: str = "36.6") -> list[Said]:
    """Today's check-in with cards, from /checkin to the confirmation; what it answered."""
    started = await member.says("/checkin")
    await member.sends_location(*TIANANMEN)
    await member.says(temperature)
    await member.ticks("以上都没有")  # the vote card, submitted
    await member.taps("否")
    summary = await member.taps("⏭ 跳过")
    assert "请核对" in texts(summary) and temperature in texts(summary)
    done = await member.taps("✅ 确认提交")
    return started + summary + done


def wecom_sender(app: WeComDaka, **others: Courier) -> tuple[Rounds, Sender]:
    """The scheduler's rounds and the outbox sender of a deployment with the app's courier."""
    assert app.channel is not None
    couriers: dict[str, Courier] = {**others, CHANNEL: courier(app.channel.api, app.sessions)}
    rounds = Rounds(app.sessions, app.clock, create_translator(), channels_of(couriers))
    return rounds, Sender(couriers, app.sessions, app.clock)


def at(app: WeComDaka, hhmm: str) -> None:
    hours, minutes = (int(p) for p in hhmm.split(":"))
    app.clock.set(datetime.combine(SATURDAY, time(hours, minutes), tzinfo=SHANGHAI))


def received(member: WeComMember, needle: str) -> list[str]:
    return [s.text for s in member.screen() if needle in s.text]


async def test_checking_in_again_today_amends_it_as_version_two(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    first = await check_in(zhangsan)
    assert "打卡成功" in texts(first)

    app.clock.advance(timedelta(hours=2))
    again = await check_in(zhangsan, temperature="37.5")
    assert "您今天已于 09:00 打卡，重新填写将更新今天的记录。" in texts(again)
    assert "今日打卡已更新（第 2 版）" in texts(again)
    assert "打卡成功" not in texts(again[-1:])

    [stored] = await checkins(app)
    assert stored.version == 2 and stored.answers["temperature"] == 37.5 and stored.abnormal
    async with app.sessions() as session:
        versions = (await session.exec(select(CheckInRevision))).all()
    assert sorted((v.version, v.answers["temperature"]) for v in versions) == [
        (1, 36.6),
        (2, 37.5),
    ]


async def test_a_reminder_round_reaches_a_wecom_member_and_its_button_starts_the_check_in(
    app: WeComDaka,
) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    lisi = app.member("lisi")
    await bind(lisi, await app.invite(), "2024002", "李四")
    await check_in(lisi)  # 李四 is in: no reminder for him
    rounds, sender = wecom_sender(app)

    at(app, "10:00")
    assert sum(r.enqueued for r in await rounds.tick()) == 1
    stats = await sender.drain()
    assert stats.sent == 1
    reminder = zhangsan.last_card()
    assert "张三" in reminder.text and "还没有打卡" in reminder.text
    assert reminder.buttons == ["✅ 立即打卡"]
    assert received(lisi, "还没有打卡") == []

    started = await zhangsan.taps("✅ 立即打卡")
    assert "请发送您当前所在的位置" in texts(started)
    assert zhangsan.last_card().buttons == ["✔ 已回复"]
    asked = await zhangsan.sends_location(*TIANANMEN)
    assert "请输入您今天测量的体温" in texts(asked)


async def test_a_fever_alerts_the_members_manager_on_wecom(app: WeComDaka) -> None:
    await app.org()
    await app.grant_manager("boss")
    await app.start()
    boss = app.member("boss")
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    done = await check_in(zhangsan, temperature="38.5")
    assert "异常" in texts(done)
    _, sender = wecom_sender(app)

    stats = await sender.drain()
    assert stats.sent == 1
    [alert] = received(boss, "异常打卡")
    assert "张三" in alert and "38.5" in alert
    assert received(zhangsan, "异常打卡") == []


async def test_a_managers_export_comes_as_a_file_and_the_trend_as_an_image(
    app: WeComDaka,
) -> None:
    await app.org()
    await app.grant_manager("boss")
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await check_in(zhangsan)
    boss = app.member("boss")

    export = await boss.says("/export")
    assert [s.msgtype for s in export] == ["file", "text"], export
    assert "1" in export[1].text and str(SATURDAY) in export[1].text
    [sent] = [d for d in app.wecom.inbox("boss") if d.msgtype == "file"]
    media = app.wecom.media[str(sent.body["media_id"])]
    assert media.filename == f"daka-{SATURDAY}-{SATURDAY}.xlsx"
    assert media.data.startswith(b"PK")  # an .xlsx is a zip

    csv = await boss.says("/export csv")
    [sent_csv] = [d for d in app.wecom.inbox("boss") if d.msgtype == "file"][1:]
    table = app.wecom.media[str(sent_csv.body["media_id"])].data.decode("utf-8-sig")
    assert "张三" in table and "36.6" in table
    assert csv[0].msgtype == "file"

    trend = await boss.says("/trend 7")
    assert [s.msgtype for s in trend] == ["image", "text"], trend
    assert "第一中学" in trend[1].text
    [image] = [d for d in app.wecom.inbox("boss") if d.msgtype == "image"]
    assert app.wecom.media[str(image.body["media_id"])].data.startswith(b"\x89PNG")

    refused = await zhangsan.says("/export")
    assert all(s.msgtype == "text" for s in refused)


async def test_one_organisation_on_both_channels_is_counted_whole(
    app: WeComDaka, server: FakeBotAPI, database_url: str
) -> None:
    """张三 checks in on Telegram, 李四 (with a fever) on WeCom, in a deployment serving both;
    the manager, on WeCom and on Telegram, is alerted on both, asks for /summary on WeCom,
    and gets the daily report counting both on each of their channels."""
    await app.org()
    await app.grant_manager("boss")
    app.settings = app.settings.model_copy(update={"bot_token": SecretStr(server.token)})
    boss = app.member("boss")  # in the app's visible range
    async with running_daka(server, app.clock, database_url) as telegram:
        telegram.org_ids["school"] = app.org_ids["school"]
        await app.start()
        async with app.sessions() as session:
            repo = Repo(session)
            member = await repo.members.by_external(
                org_id=app.org_ids["school"], external_id="2024001"
            )
            assert member is not None
            account = await telegram_account(repo, 11, now=app.clock.now())
            await repo.members.bind(member=member, account_id=account, now=app.clock.now())
            boss_account = await repo.accounts.by_identity(channel=CHANNEL, external_id="boss")
            assert boss_account is not None and boss_account.id is not None
            session.add(
                Identity(
                    channel=TELEGRAM,
                    external_id=str(BOSS_ON_TELEGRAM),
                    account_id=boss_account.id,
                    created_at=app.clock.now(),
                )
            )
            await session.commit()
        zhangsan = server.user(11)
        summary = await answer_health_form(zhangsan)
        zhangsan.press_button(summary, "确认提交")
        await reply_containing(zhangsan, "打卡成功")
        await telegram.settled()

        lisi = app.member("lisi")
        await bind(lisi, await app.invite(), "2024002", "李四")
        await check_in(lisi, temperature="38.2")
        async with app.sessions() as session:
            assert len((await session.exec(select(CheckIn))).all()) == 2

        assert telegram.bot is not None
        rounds, sender = wecom_sender(app, **create_couriers(telegram.bot, send_rate=200))
        await sender.drain()
        [on_wecom] = received(boss, "异常打卡")
        [on_telegram] = [m.text for m in server.messages(BOSS_ON_TELEGRAM) if "异常打卡" in m.text]
        for alert in (on_wecom, on_telegram):
            assert "李四" in alert and "38.2" in alert

        asked = await boss.says("/summary")
        assert "第一中学：应报 2，已报 2（100%），未报 0，异常 1" in texts(asked), texts(asked)

        at(app, "15:00")
        await rounds.tick()
        await sender.drain()
        [report] = received(boss, "日报")
        [on_telegram] = [m.text for m in server.messages(BOSS_ON_TELEGRAM) if "日报" in m.text]
        for each in (report, on_telegram):
            assert "第一中学：应报 2，已报 2（100%），未报 0，异常 1" in each, each
            assert "李四" in each and "张三" not in each  # the abnormal one is listed


async def test_a_location_asked_for_again_names_wecoms_picker_not_telegrams_button(
    app: WeComDaka,
) -> None:
    """WeCom has no "📍 Send my location" button below a message: the question and its
    errors point to the 打卡 menu's picker and the location message, nothing else."""
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    asked = texts(await zhangsan.says("/checkin"))
    typed = texts(await zhangsan.says("在家"))
    nowhere = texts(await zhangsan.sends_location(123.0, 500.0))
    assert "需要获取您的位置" in typed and "位置不可能存在" in nowhere
    for said in (asked, typed, nowhere):
        assert "请点击下方菜单“打卡”选择您的位置，或发送位置（＋ → 位置）。" in said
        assert "按钮" not in said and "发送我的位置" not in said, said
    assert await checkins(app) == []


async def test_a_text_only_member_is_never_told_to_tap_a_button(app: WeComDaka) -> None:
    """Shown text only (the WeChat plug-in), a reminder says which word to reply, and a
    wrong answer to a numbered question asks for one of its options, not a button."""
    await app.org(text_only=True)
    await app.start()
    zhangsan = app.member("zhangsan")
    await zhangsan.says(f"bind {await app.invite()}")
    await zhangsan.says("1")
    await zhangsan.says("2024001")
    await zhangsan.says("张三")
    rounds, sender = wecom_sender(app)
    at(app, "10:00")
    await rounds.tick()
    assert (await sender.drain()).sent == 1
    reminder = zhangsan.screen()[-1]
    assert reminder.msgtype == "text" and "还没有打卡，请立即打卡。" in reminder.text
    assert "回复“打卡”：✅ 立即打卡" in reminder.text and "按钮" not in reminder.text

    assert "请发送您当前所在的位置" in texts(await zhangsan.says("打卡"))
    await zhangsan.sends_location(*TIANANMEN)
    symptoms = texts(await zhangsan.says("36.5"))
    assert "请选择所有符合的选项，然后选择“完成”。" in symptoms and "点击" not in symptoms
    for wrong in ("abc", "99"):
        again = texts(await zhangsan.says(wrong))
        assert "请从问题的选项中选择作答" in again and "8. 完成 ✔" in again
        assert "按钮" not in again, again
    await zhangsan.says("7")
    await zhangsan.says("8")
    again = texts(await zhangsan.says("也许"))
    assert "请从问题的选项中选择作答" in again and "回复 1 是 / 2 否" in again
    assert "按钮" not in again
    await zhangsan.says("2")
    summary = texts(await zhangsan.says("1"))  # the photo skipped
    assert "回复 1 ✅ 确认提交 / 2 ✏️ 修改回答 / 3 ❌ 取消" in summary
    again = texts(await zhangsan.says("好的"))
    assert "请选择一个选项，确认或修改您的回答。" in again and "按钮" not in again
    assert "回复 1 ✅ 确认提交 / 2 ✏️ 修改回答 / 3 ❌ 取消" in again


SYMPTOMS = ["发热", "咳嗽", "咽痛", "乏力", "味觉或嗅觉减退", "其他不适", "以上都没有"]


async def test_members_answer_a_choose_several_question_by_vote_card_and_by_numbers(
    app: WeComDaka,
) -> None:
    """张三 ticks his symptoms on the vote card in the WeCom client and submits them (after
    an empty submission and a forged option id, each asked again in place, saying why); 李四
    reads in WeChat, where no card shows, and replies with the numbers instead ("2 3", after a
    number that is not one of them). Both check-ins hold what each chose."""
    await app.org()
    await app.start()
    zhangsan, lisi = app.member("zhangsan"), app.member("lisi")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await bind(lisi, await app.invite(), "2024002", "李四")

    await zhangsan.says("打卡")
    await zhangsan.sends_location(*TIANANMEN)
    [card] = await zhangsan.says("37.6")
    assert card.msgtype == "template_card" and "您今天是否有以下症状？（可多选）" in card.text
    assert card.choices == SYMPTOMS and card.buttons == ["完成 ✔"]

    [empty] = await zhangsan.ticks()  # submitted with nothing ticked
    assert empty.updated and empty.task == card.task and empty.choices == SYMPTOMS
    assert "请至少选择一项。" in empty.text and "您今天是否有以下症状" in empty.text

    submit = app.wecom.cards[(AGENT, card.task)].body["submit_button"]["key"]
    forged = [(submit, ["ans:00000000:symptoms:fever", "🦠"])]
    [again] = await zhangsan._act(
        zhangsan.driver.press(
            "zhangsan", card.task, submit, card_type="vote_interaction", selected=forged
        )
    )
    assert again.updated and "请从问题的选项中选择作答。" in again.text
    assert again.choices == SYMPTOMS and not await checkins(app)

    [exposure] = await zhangsan.ticks("咳嗽", "发热")
    assert exposure.updated and exposure.task == card.task  # the card is the next question
    assert "✔ 症状: 发热、咳嗽" in exposure.text and exposure.buttons == ["是", "否"]
    with pytest.raises(AssertionError, match="no open vote card"):
        await zhangsan.ticks("乏力")  # nothing left to submit twice
    await zhangsan.taps("否")
    await zhangsan.taps("⏭ 跳过")
    assert "打卡成功" in texts(await zhangsan.taps("✅ 确认提交"))

    await lisi.says("打卡")
    await lisi.sends_location(*TIANANMEN)
    [card] = await lisi.says("36.5")
    assert card.msgtype == "template_card" and card.choices == SYMPTOMS  # not shown in WeChat
    retry = await lisi.says("1 9")
    assert "请从问题的选项中选择作答。" in texts(retry) and retry[-1].choices == SYMPTOMS
    asked = await lisi.says("2，3")
    assert "✔ 症状: 咳嗽、咽痛" in texts(asked) and asked[-1].buttons == ["是", "否"]
    await lisi.says("2")  # a number after a button card is what it says: asked again
    await lisi.taps("否")
    await lisi.taps("⏭ 跳过")
    assert "打卡成功" in texts(await lisi.taps("✅ 确认提交"))

    by_member = {c.member_id: c for c in await checkins(app)}
    assert sorted(c.answers["symptoms"] for c in by_member.values()) == [
        ["cough", "sore_throat"],
        ["fever", "cough"],
    ]
    assert all(c.abnormal for c in by_member.values())


async def test_editing_the_symptoms_from_the_summary_shows_the_earlier_ticks(
    app: WeComDaka,
) -> None:
    """修改回答 → 症状: the summary card becomes the vote card in place, the earlier answer
    ticked (is_checked); submitted again, the summary shows the new answer."""
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await zhangsan.says("打卡")
    await zhangsan.sends_location(*TIANANMEN)
    await zhangsan.says("36.6")
    await zhangsan.ticks("乏力")
    await zhangsan.taps("否")
    summary = await zhangsan.taps("⏭ 跳过")
    assert "乏力" in texts(summary)

    await zhangsan.taps("✏️ 修改回答")
    [card] = await zhangsan.taps("症状")
    assert card.updated and card.msgtype == "template_card"
    assert card.choices == [("☑ " if s == "乏力" else "") + s for s in SYMPTOMS]
    summary = await zhangsan.ticks("咳嗽")  # 乏力 untick in the client: only what is ticked
    assert "咳嗽" in texts(summary) and "乏力" not in texts(summary)
    assert "打卡成功" in texts(await zhangsan.taps("✅ 确认提交"))
    [stored] = await checkins(app)
    assert stored.answers["symptoms"] == ["cough"]
