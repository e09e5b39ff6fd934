"""The daily check-in as a member lives it: questions, bad answers, summary, amendments."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import col, select

from domain.clock import FixedClock
from storage.models import CheckIn, CheckInRevision, FsmRecord, Organisation
from tests.fakebot import CallbackAnswer, FakeBotAPI, FakeUser, SentMessage
from tests.handlers.conftest import Daka, reply_containing, running_daka

TIANANMEN = (39.9087, 116.3975)
SHENZHEN = (22.5431, 114.0579)

Q_LOCATION = "请发送您当前所在的位置"
Q_TEMPERATURE = "请输入您今天测量的体温"
Q_SYMPTOMS = "您今天是否有以下症状"
Q_EXPOSURE = "近14天内是否接触过"
Q_DETAILS = "请简要说明具体情况"
Q_PHOTO = "如有需要，请上传一张照片"
SUMMARY = "请核对"


@pytest.fixture
async def member(daka: Daka, server: FakeBotAPI) -> FakeUser:
    await daka.org()
    user = server.user(701, first_name="三", language_code="zh-hans")
    await daka.enrol(user, "2024001", "张三", await daka.invite())
    user.drain()
    return user


async def answer_health_form(
    user: FakeUser,
    *,
    where: tuple[float, float] = TIANANMEN,
    temperature: str = "36.5",
    symptoms: tuple[str, ...] = ("以上都没有",),
    exposure: str | None = None,
) -> SentMessage:
    """Walk the health form from /checkin to the summary; returns the summary message."""
    first = await user.ask("/checkin")
    assert Q_LOCATION in first.text and first.has_request_location_button
    user.send_location(*where, accuracy=12.5)
    temperature_question = await reply_containing(user, Q_TEMPERATURE)
    assert "已收到位置" in temperature_question.text
    assert temperature_question.buttons[0] == ["✅ 打卡"]  # the member menu is back
    question = await user.ask(temperature)
    assert Q_SYMPTOMS in question.text
    for option in symptoms:
        user.press_button(question, option)
        question = await user.next_reply()  # the keyboard, re-drawn with the tick
    user.press_button(question, "完成")
    ask_exposure = await reply_containing(user, Q_EXPOSURE)
    if exposure is None:
        user.press_button(ask_exposure, "否")
    else:
        user.press_button(ask_exposure, "是")
        await reply_containing(user, Q_DETAILS)
        user.send(exposure)
    photo = await reply_containing(user, Q_PHOTO)
    user.press_button(photo, "跳过")
    return await reply_containing(user, SUMMARY)


async def next_alert(user: FakeUser) -> CallbackAnswer:
    """The next button answer that says something (plain acknowledgements are skipped)."""
    while not (answer := await user.next_callback_answer()).text:
        pass
    return answer


async def stored(daka: Daka) -> list[CheckIn]:
    await daka.settled()
    async with daka.sessions() as session:
        return list((await session.exec(select(CheckIn).order_by(col(CheckIn.id)))).all())


async def test_a_healthy_member_checks_in(daka: Daka, member: FakeUser) -> None:
    summary = await answer_health_form(member)
    assert "36.5 °C" in summary.text and "以上都没有" in summary.text
    assert "⚠️" not in summary.text
    assert summary.buttons == [["✅ 确认提交"], ["✏️ 修改回答", "❌ 取消"]]
    member.press_button(summary, "确认提交")
    done = await reply_containing(member, "打卡成功")
    assert "2026-11-28" in done.text and "正常" in done.text

    [checkin] = await stored(daka)
    assert checkin.local_day == date(2026, 11, 28)
    assert (checkin.latitude, checkin.longitude) == TIANANMEN
    assert checkin.accuracy_m == 12.5 and not checkin.live
    assert checkin.province == "北京市" and checkin.country == "中国"
    assert not checkin.abnormal and checkin.reasons == []
    assert checkin.answers["temperature"] == 36.5
    assert checkin.answers["symptoms"] == ["none"]
    assert checkin.answers["exposure"] == {"yes": False, "detail": None}
    assert checkin.answers["photo"] is None


async def test_a_feverish_member_is_told_the_answers_are_abnormal(
    daka: Daka, member: FakeUser
) -> None:
    summary = await answer_health_form(
        member, temperature="37.8", symptoms=("发热", "咳嗽"), exposure="11月20日 途经武汉"
    )
    assert summary.text.count("⚠️") == 3
    member.press_button(summary, "确认提交")
    done = await reply_containing(member, "打卡成功")
    assert "异常" in done.text and "体温" in done.text and "症状" in done.text
    [checkin] = await stored(daka)
    assert checkin.abnormal
    assert checkin.reasons == ["temperature", "symptoms", "exposure"]
    assert checkin.answers["symptoms"] == ["fever", "cough"]
    assert checkin.answers["exposure"] == {"yes": True, "detail": "11月20日 途经武汉"}


async def test_checking_in_again_the_same_day_amends_and_keeps_versions(
    daka: Daka, member: FakeUser
) -> None:
    member.press_button(await answer_health_form(member), "确认提交")
    await reply_containing(member, "打卡成功")
    daka.clock.advance(timedelta(hours=2))
    first = await member.ask("/checkin")
    assert "今天" in first.text and "09:00" in first.text  # you already checked in at 09:00
    member.drain()
    summary = await answer_health_form(member, temperature="37.5")
    member.press_button(summary, "确认提交")
    done = await reply_containing(member, "更新")
    assert "2" in done.text
    [checkin] = await stored(daka)
    assert checkin.version == 2 and checkin.answers["temperature"] == 37.5 and checkin.abnormal
    async with daka.sessions() as session:
        versions = (await session.exec(select(CheckInRevision))).all()
    assert [(v.version, v.answers["temperature"]) for v in versions] == [(1, 36.5), (2, 37.5)]


async def test_the_local_day_follows_the_organisations_time_zone(
    daka: Daka, member: FakeUser
) -> None:
    daka.clock.advance(timedelta(hours=14, minutes=30))  # 23:30 in Shanghai, 15:30 UTC
    member.press_button(await answer_health_form(member), "确认提交")
    await reply_containing(member, "打卡成功")
    daka.clock.advance(timedelta(hours=1))  # 00:30 the next local day, still the 28th in UTC
    member.press_button(await answer_health_form(member), "确认提交")
    second = await reply_containing(member, "打卡成功")
    assert "2026-11-29" in second.text
    assert [c.local_day for c in await stored(daka)] == [date(2026, 11, 28), date(2026, 11, 29)]


@pytest.mark.parametrize(
    ("answer", "explanation"),
    [
        ("45", "过高"),
        ("34", "过低"),
        ("abc", "不是有效的数字"),
        ("36.55", "小数"),
    ],
)
async def test_a_bad_temperature_is_explained_and_asked_again(
    daka: Daka, member: FakeUser, answer: str, explanation: str
) -> None:
    await member.ask("/checkin")
    member.send_location(*TIANANMEN)
    await reply_containing(member, Q_TEMPERATURE)
    again = await member.ask(answer)
    assert explanation in again.text
    assert Q_TEMPERATURE in again.text  # the explanation, then the same question
    symptoms = await member.ask("３６．６")  # full-width digits from a Chinese keyboard
    assert Q_SYMPTOMS in symptoms.text


async def test_wrong_kinds_of_input_get_a_clear_answer_and_the_same_question(
    daka: Daka, member: FakeUser
) -> None:
    await member.ask("/checkin")
    error = await member.ask("我在家")  # text where a location is due
    assert "需要获取您的位置" in error.text and Q_LOCATION in error.text
    assert error.has_request_location_button and "请点击下方按钮" in error.text
    member.send_sticker()
    again = await member.next_reply()
    assert "需要获取您的位置" in again.text and again.has_request_location_button
    member.send_location(*TIANANMEN, forwarded=True)
    refusal = await member.next_reply()
    assert "转发" in refusal.text and Q_LOCATION in refusal.text
    error = await member.ask("/today")  # a command in the middle of the form
    assert "/cancel" in error.text and Q_LOCATION in error.text
    member.send_location(*SHENZHEN, live_period=900)
    received = await reply_containing(member, Q_TEMPERATURE)
    assert "广东省" in received.text and "深圳市" in received.text
    symptoms = await member.ask("36.4")
    again = await member.ask("发热")  # typing where buttons are due
    assert "请从问题的选项中选择作答" in again.text and Q_SYMPTOMS in again.text
    member.press_button(again, "完成")  # Done with nothing chosen
    alert = await next_alert(member)
    assert alert.show_alert and "至少" in (alert.text or "")
    member.press_button(symptoms, "以上都没有")  # a button of the same question, older message
    await member.next_reply()
    await daka.settled()
    exposure_pending = [m for m in member.messages() if Q_EXPOSURE in m.text]
    assert exposure_pending == []
    async with daka.sessions() as session:
        assert (await session.exec(select(CheckIn))).all() == []


async def test_a_location_off_the_globe_is_explained_and_asked_again(
    daka: Daka, member: FakeUser, server: FakeBotAPI
) -> None:
    """Regression: a latitude beyond ±90 or a longitude beyond ±180 (a forged client) raised
    at the location step and lost the update."""
    await member.ask("/checkin")
    for lat, lon in ((91.0, 116.4), (39.9, -180.5), (-1e6, 1e9)):
        member.send_location(lat, lon)
        error = await member.next_reply()
        assert "位置不可能存在" in error.text and Q_LOCATION in error.text, error.text
        assert error.has_request_location_button
    member.send_location(*TIANANMEN)
    received = await reply_containing(member, Q_TEMPERATURE)  # the same draft goes on
    assert "北京市" in received.text

    english = server.user(702, language_code="en")
    await daka.enrol(english, "2024002", "李四", await daka.invite())
    await english.ask("/checkin")
    english.send_location(0.0, 200.0)
    error = await english.next_reply()
    assert "not a place on Earth" in error.text and error.has_request_location_button
    await daka.settled()
    assert await stored(daka) == []


async def test_a_live_location_is_accepted_and_marked_live(daka: Daka, member: FakeUser) -> None:
    await member.ask("/checkin")
    member.send_location(*SHENZHEN, live_period=900, accuracy=30)
    await reply_containing(member, Q_TEMPERATURE)
    summary_after = await member.ask("36.6")
    member.press_button(summary_after, "以上都没有")
    member.press_button(await member.next_reply(), "完成")
    member.press_button(await reply_containing(member, Q_EXPOSURE), "否")
    member.press_button(await reply_containing(member, Q_PHOTO), "跳过")
    summary = await reply_containing(member, SUMMARY)
    assert "实时" in summary.text
    member.press_button(summary, "确认提交")
    await reply_containing(member, "打卡成功")
    [checkin] = await stored(daka)
    assert checkin.live and checkin.accuracy_m == 30 and checkin.city == "深圳市"


async def test_photos_are_stored_but_forwarded_photos_refused(
    daka: Daka, member: FakeUser
) -> None:
    await member.ask("/checkin")
    member.send_location(*TIANANMEN)
    await reply_containing(member, Q_TEMPERATURE)
    member.press_button(await member.ask("36.6"), "以上都没有")
    member.press_button(await member.next_reply(), "完成")
    member.press_button(await reply_containing(member, Q_EXPOSURE), "否")
    await reply_containing(member, Q_PHOTO)
    member.send_photo(forwarded=True)
    refusal = await member.next_reply()
    assert "转发" in refusal.text and Q_PHOTO in refusal.text
    member.send_photo()
    summary = await reply_containing(member, SUMMARY)
    assert "已附照片" in summary.text
    member.press_button(summary, "确认提交")
    await reply_containing(member, "打卡成功")
    [checkin] = await stored(daka)
    assert isinstance(checkin.answers["photo"], str) and checkin.answers["photo"]


async def test_editing_one_answer_from_the_summary(daka: Daka, member: FakeUser) -> None:
    summary = await answer_health_form(member, temperature="36.5")
    member.press_button(summary, "修改回答")
    choices = await member.next_reply()
    member.press_button(choices, "体温")
    await reply_containing(member, Q_TEMPERATURE)
    summary = await member.ask("36.9")
    assert SUMMARY in summary.text and "36.9 °C" in summary.text
    member.press_button(summary, "确认提交")
    await reply_containing(member, "打卡成功")
    [checkin] = await stored(daka)
    assert checkin.answers["temperature"] == 36.9 and checkin.version == 1


async def test_cancel_from_any_step_discards_the_draft(daka: Daka, member: FakeUser) -> None:
    await member.ask("/checkin")
    member.send_location(*TIANANMEN)
    await reply_containing(member, Q_TEMPERATURE)
    cancelled = await member.ask("/cancel")
    assert "已取消" in cancelled.text
    nothing = await member.ask("/cancel")
    assert "没有" in nothing.text
    assert await stored(daka) == []


async def test_a_stale_button_from_yesterday_is_refused(daka: Daka, member: FakeUser) -> None:
    summary = await answer_health_form(member)
    member.press_button(summary, "确认提交")
    await reply_containing(member, "打卡成功")
    daka.clock.advance(timedelta(days=1))
    member.press(summary, summary.callback_data("确认提交"))
    alert = await next_alert(member)
    assert "已失效" in (alert.text or "")
    assert len(await stored(daka)) == 1


async def test_a_draft_left_overnight_restarts_for_the_new_day(
    daka: Daka, member: FakeUser
) -> None:
    await member.ask("/checkin")
    member.send_location(*TIANANMEN)
    await reply_containing(member, Q_TEMPERATURE)
    daka.clock.advance(timedelta(days=1))
    expired = await member.ask("36.5")
    assert "过期" in expired.text and "2026-11-28" in expired.text
    assert Q_LOCATION in expired.text


async def test_a_draft_survives_a_restart_of_the_bot(daka: Daka, member: FakeUser) -> None:
    await member.ask("/checkin")
    member.send_location(*TIANANMEN)
    await reply_containing(member, Q_TEMPERATURE)
    await daka.settled()
    await daka.restart()
    symptoms = await member.ask("36.7")
    assert Q_SYMPTOMS in symptoms.text
    member.press_button(symptoms, "以上都没有")
    member.press_button(await member.next_reply(), "完成")
    member.press_button(await reply_containing(member, Q_EXPOSURE), "否")
    member.press_button(await reply_containing(member, Q_PHOTO), "跳过")
    member.press_button(await reply_containing(member, SUMMARY), "确认提交")
    await reply_containing(member, "打卡成功")
    [checkin] = await stored(daka)
    assert checkin.answers["temperature"] == 36.7 and checkin.latitude == TIANANMEN[0]


async def test_outside_the_geofence_is_flagged_not_refused(daka: Daka, member: FakeUser) -> None:
    async with daka.sessions() as session:
        org = await session.get(Organisation, daka.org_ids["school"])
        assert org is not None
        org.geofence_lat, org.geofence_lon, org.geofence_radius_m = 39.9087, 116.3975, 5000
        await session.commit()
    summary = await answer_health_form(member, where=SHENZHEN)
    assert "范围" in summary.text
    member.press_button(summary, "确认提交")
    done = await reply_containing(member, "打卡成功")
    assert "异常" in done.text
    [checkin] = await stored(daka)
    assert checkin.outside_geofence and checkin.reasons == ["geofence"] and checkin.abnormal


async def test_the_same_update_delivered_twice_gives_one_checkin_and_one_reply(
    daka: Daka, member: FakeUser, server: FakeBotAPI
) -> None:
    summary = await answer_health_form(member)
    update_id = member.press_button(summary, "确认提交")
    await reply_containing(member, "打卡成功")
    await daka.settled()
    [original] = [u for u in server.updates if u["update_id"] == update_id]
    server.push_update({**original})  # Telegram re-delivers: same update, new id? no: same id
    await daka.settled()
    async with daka.sessions() as session:
        revisions = (await session.exec(select(CheckInRevision))).all()
    assert len(revisions) == 1
    assert sum("打卡成功" in m.text for m in member.messages()) == 1


async def test_today_and_history_show_only_my_own_days(
    daka: Daka, member: FakeUser, server: FakeBotAPI
) -> None:
    not_yet = await member.ask("/today")
    assert "还没有" in not_yet.text or "尚未" in not_yet.text
    member.press_button(await answer_health_form(member, temperature="37.6"), "确认提交")
    await reply_containing(member, "打卡成功")
    other = server.user(702)
    await daka.enrol(other, "2024002", "李四", await daka.invite())
    today = await member.ask("/today")
    assert "37.6 °C" in today.text and "⚠️" in today.text and "北京市" in today.text
    daka.clock.advance(timedelta(days=2))
    history = await member.ask("/history")
    lines = history.text.splitlines()
    assert any(line.startswith("⚠️ 2026-11-28") for line in lines)
    assert any(line.startswith("❌ 2026-11-29") for line in lines)
    assert any(line.startswith("❌ 2026-11-30") for line in lines)
    assert not any("2026-11-27" in line for line in lines)  # before enrolment
    other_history = await other.ask("/history")
    assert "⚠️" not in other_history.text and "✅" not in other_history.text


async def test_english_speakers_get_english_and_can_switch(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    alice = server.user(703, first_name="Alice", language_code="en")
    await daka.enrol(alice, "A100", "alice smith", await daka.invite())
    first = await alice.ask("/checkin")
    assert "Please share your current location" in first.text
    assert first.buttons == [["📍 Send my location"]]
    await alice.ask("/cancel")
    menu = await alice.ask("/language")
    alice.press_button(menu, "中文")
    await reply_containing(alice, "已切换为中文")
    alice.send("/checkin")
    await reply_containing(alice, Q_LOCATION)


@pytest.mark.redis
async def test_with_redis_the_draft_lives_in_redis_and_survives_a_restart(
    server: FakeBotAPI, clock: FixedClock, migrated_sqlite_url: str, redis_url: str
) -> None:
    from redis.asyncio import Redis

    async with running_daka(server, clock, migrated_sqlite_url, redis_url=redis_url) as daka:
        await daka.org()
        user = server.user(720, language_code="zh-hans")
        await daka.enrol(user, "2024001", "张三", await daka.invite())
        await user.ask("/checkin")
        user.send_location(*TIANANMEN)
        await reply_containing(user, Q_TEMPERATURE)
        await daka.settled()
        client = Redis.from_url(redis_url)
        try:
            keys = [k.decode() async for k in client.scan_iter("fsm:*")]
        finally:
            await client.aclose()
        assert any(":720:" in k and k.endswith(":data") for k in keys)
        async with daka.sessions() as session:
            assert (await session.exec(select(FsmRecord))).all() == []
        await daka.restart()
        assert Q_SYMPTOMS in (await user.ask("36.8")).text
