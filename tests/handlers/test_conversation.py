"""How a Telegram message becomes the core's input (handlers/telegram/conversation.py): a
command is read as aiogram's `Command` filter read it when the routers were aiogram's, from the
text or the caption of a photo or file, for this bot or for another."""

from __future__ import annotations

from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import CLASS_ONE, Daka

UNKNOWN = "无法识别该命令，请发送 /help 查看可用功能。"
CANCELLED = "已取消，未记录任何内容。"


async def test_a_command_to_this_bot_is_ours_and_one_to_another_is_not(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    stranger = server.user(800)
    ours = await stranger.ask("/help@Daka_Test_Bot")  # the mention, in any case
    assert "/checkin" in ours.text
    assert (await stranger.ask("/help@other_bot")).text == UNKNOWN


async def test_a_caption_is_a_command_where_a_command_is_taken(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    member = server.user(801)
    await daka.enrol(member, "2024001", "张三", await daka.invite())
    member.drain()
    member.send_photo(caption="/today")  # outside a conversation: the command
    assert "今天" in (await member.next_reply()).text
    member.send_photo(caption="/dance")  # not a command of ours: a photo out of the blue
    assert "/checkin" in (await member.next_reply()).text
    assert "请发送您当前所在的位置" in (await member.ask("/checkin")).text
    member.send_photo(caption="/cancel")  # /cancel is taken in any state
    assert (await member.next_reply()).text == CANCELLED


async def test_a_roster_captioned_with_a_command_is_the_roster(
    school: Daka, server: FakeBotAPI
) -> None:
    counselor = server.user(CLASS_ONE)
    await counselor.ask("/roster")
    counselor.send_document(
        "roster.csv",
        "unit,member_id,name\n工程学院/一班,2024009,赵九\n".encode(),
        caption="/roster",
    )
    assert "新增 1 人，更新 0 人，拒绝 0 行" in (await counselor.next_reply()).text
