"""Everybody's commands: the menu, /help, /start without a code, languages, unknown input."""

from __future__ import annotations

from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, reply_containing


async def test_the_command_menu_is_installed_in_both_languages(
    daka: Daka, server: FakeBotAPI
) -> None:
    scope = {"type": "all_private_chats"}
    chinese = {c["command"]: c["description"] for c in server.commands(scope)}
    english = {c["command"]: c["description"] for c in server.commands(scope, "en")}
    assert (
        set(chinese)
        == set(english)
        == {
            "checkin",
            "today",
            "history",
            "mydata",
            "withdraw",
            "language",
            "help",
            "cancel",
        }
    )
    assert "打卡" in chinese["checkin"] and english["checkin"] == "Check in for today"


async def test_a_stranger_is_told_how_to_enrol(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org()
    stranger = server.user(800)
    hello = await stranger.ask("/start")
    assert "邀请链接" in hello.text
    refused = await stranger.ask("/checkin")
    assert "还未加入" in refused.text or "邀请链接" in refused.text
    chat = await stranger.ask("你好")
    assert "邀请链接" in chat.text
    help_text = await stranger.ask("/help")
    assert "/checkin" in help_text.text and "邀请链接" in help_text.text


async def test_unknown_commands_and_chatter_get_a_pointer_to_help(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    user = server.user(801)
    await daka.enrol(user, "2024001", "张三", await daka.invite())
    unknown = await user.ask("/dance")
    assert "/help" in unknown.text
    chatter = await user.ask("今天天气不错")
    assert "/checkin" in chatter.text
    assert chatter.buttons[0] == ["✅ 打卡"]
    welcome = await user.ask("/start")
    assert "张三" in welcome.text


async def test_the_organisation_language_is_used_when_telegram_gives_none_we_speak(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org(slug="intl", language="en")
    user = server.user(802, language_code="fr")
    await daka.enrol(user, "A100", "Alice Smith", await daka.invite("intl"))
    first = await user.ask("/checkin")
    assert "Please share your current location" in first.text


async def test_the_location_only_form_is_one_question(daka: Daka, server: FakeBotAPI) -> None:
    await daka.org(slug="village", form="location")
    user = server.user(803)
    await daka.enrol(user, "2024003", "王五", await daka.invite("village"))
    first = await user.ask("/checkin")
    assert "(1/1)" in first.text and first.has_request_location_button
    user.send_location(30.5728, 104.0668)
    summary = await reply_containing(user, "请核对")
    assert "体温" not in summary.text
    user.press_button(summary, "确认提交")
    done = await reply_containing(user, "打卡成功")
    assert "正常" in done.text


async def test_json_logs_carry_the_update_and_the_organisation_but_no_answers(
    school: Daka, server: FakeBotAPI
) -> None:
    """LOG_FORMAT=json end to end: the records logged while an update is handled name the
    update and the organisation; what the member answered is not in them."""
    import io
    import json
    import logging

    from bot.logs import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    level, before = root.level, list(root.handlers)
    configure_logging("INFO", "json", secrets=[server.token], stream=stream)
    try:
        member = server.user(802)
        await member.ask("/today")
        await school.settled()
    finally:
        for handler in [h for h in root.handlers if h not in before]:
            root.removeHandler(handler)
        root.setLevel(level)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    handled = [r for r in records if r.get("org") == "school" and "update_id" in r]
    assert handled, records
    assert all(isinstance(r["update_id"], int) for r in handled)
    text = stream.getvalue()
    assert server.token not in text and "李四" not in text and "2024002" not in text
