"""Daka in a group chat: one line that points to the private chat, and nothing personal.

Regressions: /mydata in a group posted the member's data file there, /missing and /summary from
a manager posted names and figures to the whole group, and an anonymous group admin's /summary,
/missing or /start x raised."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.fakebot import FakeBotAPI
from tests.handlers.chats import (
    ANONYMOUS_ADMIN,
    CHANNEL,
    GROUP,
    OTHER_BOT,
    SUPERGROUP,
    bot_added_to,
    message_in,
    press_in,
    update,
)
from tests.handlers.conftest import ADMIN, CLASS_ONE, Daka

LINE_ZH = "Daka 只在私聊中回复：https://t.me/daka_test_bot"
LINE_EN = "Daka answers in a private chat only: https://t.me/daka_test_bot"


@pytest.fixture(autouse=True)
def no_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No handler failed and nothing was logged with a traceback."""
    yield
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not failures, [r.getMessage() for r in failures]


async def test_commands_in_a_group_get_one_line_and_no_personal_data(
    school: Daka, server: FakeBotAPI
) -> None:
    zhang, counselor, admin = server.user(801), server.user(CLASS_ONE), server.user(ADMIN)
    for user in (zhang, counselor, admin):
        user.drain()
    documents = server.count("sendDocument")
    server.push_update({"message": message_in(GROUP, zhang, "/mydata")})
    server.push_update({"message": message_in(SUPERGROUP, counselor, "/missing")})
    server.push_update({"message": message_in(SUPERGROUP, counselor, "/summary@daka_test_bot")})
    admin.update(language_code="en")
    server.push_update({"message": message_in(GROUP, admin, "/export")})
    await school.settled()

    assert [m.text for m in server.messages(GROUP["id"])] == [LINE_ZH, LINE_EN]
    assert [m.text for m in server.messages(SUPERGROUP["id"])] == [LINE_ZH, LINE_ZH]
    assert server.count("sendDocument") == documents
    for user in (zhang, counselor, admin):
        await user.expect_no_reply()


async def test_an_anonymous_admin_gets_the_line_and_no_error(
    school: Daka, server: FakeBotAPI
) -> None:
    for text in ("/summary", "/missing 9999-12-31", f"/start {await school.invite()}"):
        server.push_update({"message": message_in(SUPERGROUP, ANONYMOUS_ADMIN, text)})
    await school.settled()
    assert [m.text for m in server.messages(SUPERGROUP["id"])] == [LINE_ZH] * 3


async def test_chatter_bots_and_other_bots_commands_in_a_group_get_nothing(
    school: Daka, server: FakeBotAPI
) -> None:
    zhang = server.user(801)
    zhang.drain()
    server.push_update({"message": message_in(GROUP, zhang, "大家好，今天谁没打卡？")})
    server.push_update({"message": message_in(GROUP, zhang, "/help@some_other_bot")})
    server.push_update({"message": message_in(GROUP, zhang, "/ 这不是命令")})
    server.push_update({"message": message_in(GROUP, OTHER_BOT, "/summary")})
    server.push_update({"message": message_in(GROUP, zhang, "", new_chat_members=[OTHER_BOT])})
    await school.settled()
    assert server.messages(GROUP["id"]) == []
    await zhang.expect_no_reply()


async def test_a_button_pressed_in_a_group_is_answered_with_the_line_alone(
    school: Daka, server: FakeBotAPI
) -> None:
    admin = server.user(ADMIN)
    admin.drain()
    edits = server.count("editMessageText")
    press = press_in(GROUP, admin, "nav:0:2026-11-28:0")
    server.push_update({"callback_query": press})
    await school.settled()
    [answer] = [a for a in server.callback_answers if a.callback_query_id == press["id"]]
    assert answer.text == LINE_ZH and answer.show_alert
    assert server.count("editMessageText") == edits and server.messages(GROUP["id"]) == []


async def test_channel_posts_edits_bots_and_being_added_are_handled_quietly(
    school: Daka, server: FakeBotAPI
) -> None:
    """Kinds long polling does not ask for; a webhook set up by hand might still get them."""
    zhang = server.user(801)
    zhang.drain()
    poller = school.poller
    assert poller is not None
    sent = server.count()
    await poller.handle(
        [
            update(server, "channel_post", message_in(CHANNEL, None, "/summary")),
            update(server, "edited_channel_post", message_in(CHANNEL, None, "/missing")),
            update(server, "edited_message", message_in(GROUP, zhang, "/mydata")),
            update(server, "edited_message", message_in(zhang.chat_dict, zhang, "/mydata")),
            update(server, "my_chat_member", bot_added_to(SUPERGROUP, zhang)),
            update(server, "message", message_in(zhang.chat_dict, OTHER_BOT, "/mydata")),
        ]
    )
    await school.settled()
    assert server.count() == sent  # not one call: nothing to say to any of them
    await zhang.expect_no_reply()


async def test_the_same_command_in_the_private_chat_still_works(
    school: Daka, server: FakeBotAPI
) -> None:
    counselor = server.user(CLASS_ONE)
    counselor.drain()
    server.push_update({"message": message_in(SUPERGROUP, counselor, "/missing")})
    missing = await counselor.ask("/missing")
    assert "李四" in missing.text
    assert [m.text for m in server.messages(SUPERGROUP["id"])] == [LINE_ZH]
