"""A check-in's photo in a manager's view on Telegram, over the fake Bot API: the member's photo
is kept when answered, /member offers the day's photo, and pressing it sends the photo to the
manager's own chat; a manager of another class forging the button is refused."""

from __future__ import annotations

import pytest
from sqlmodel import select

from handlers.telegram.keyboards import PhotoCb
from storage.models import AuditEntry, Photo
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import CLASS_ONE, Daka, reply_containing
from tests.handlers.test_checkin import (
    Q_EXPOSURE,
    Q_PHOTO,
    Q_TEMPERATURE,
    SUMMARY,
    TIANANMEN,
)

JPEG = b"\xff\xd8\xff\xe0" + b"a thermometer at 36.6" * 50
CLASS_TWO = 705
DAY = "2026-11-28"


async def test_a_manager_is_sent_a_members_photo_and_another_class_is_refused(
    daka: Daka, server: FakeBotAPI
) -> None:
    await daka.org()
    await daka.grant(CLASS_ONE, "工程学院/一班")
    await daka.grant(CLASS_TWO, "工程学院/二班")
    zhang = server.user(801)
    await daka.enrol(zhang, "2024001", "张三", await daka.invite())
    await zhang.ask("/checkin")
    zhang.send_location(*TIANANMEN)
    await reply_containing(zhang, Q_TEMPERATURE)
    zhang.press_button(await zhang.ask("36.6"), "以上都没有")
    zhang.press_button(await zhang.next_reply(), "完成")
    zhang.press_button(await reply_containing(zhang, Q_EXPOSURE), "否")
    await reply_containing(zhang, Q_PHOTO)
    zhang.send_photo(content=JPEG)
    summary = await reply_containing(zhang, SUMMARY)
    zhang.press_button(summary, "确认提交")
    await reply_containing(zhang, "打卡成功")
    await daka.settled()
    async with daka.sessions() as session:
        [kept] = (await session.exec(select(Photo))).all()
    assert kept.content == JPEG and kept.channel == "telegram"

    counselor = server.user(CLASS_ONE)
    view = await counselor.ask("/member 2024001")
    assert "张三" in view.text and "📷" in view.text
    [[label]] = view.buttons
    counselor.press_button(view, label)
    sent = await counselor.next_reply()
    assert sent.photo and server.file_bytes(sent.file_id or "") == JPEG
    assert "张三" in sent.text and DAY in sent.text

    other = server.user(CLASS_TWO)
    other_view = await other.ask("/summary")
    member_id = (await daka.member("2024001")).id or 0
    other.press(other_view, PhotoCb(member=member_id, day=DAY).pack())
    answer = await other.next_callback_answer()
    while not answer.text:
        answer = await other.next_callback_answer()
    assert answer.text == "此按钮已失效。"
    await daka.settled()
    assert [m for m in other.drain() if m.photo] == []
    async with daka.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.photo"))
        ).all()
    assert [(a.actor, a.subject) for a in audit] == [(f"telegram:{CLASS_ONE}", "2024001")]


# A JPEG 12000 pixels wide and 100 high (its start of frame is all Telegram reads of it).
PANORAMA = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xc0\x00\x11\x08\x00\x64\x2e\xe0\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    + b"a long corridor" * 20
    + b"\xff\xd9"
)
GIF = b"GIF89a\x10\x00\x10\x00" + b"a moving thermometer" * 20


async def checked_in_with(daka: Daka, server: FakeBotAPI, content: bytes) -> None:
    """张三 checks in with a photo of `content`."""
    await daka.org()
    await daka.grant(CLASS_ONE, "工程学院/一班")
    zhang = server.user(801)
    await daka.enrol(zhang, "2024001", "张三", await daka.invite())
    await zhang.ask("/checkin")
    zhang.send_location(*TIANANMEN)
    await reply_containing(zhang, Q_TEMPERATURE)
    zhang.press_button(await zhang.ask("36.6"), "以上都没有")
    zhang.press_button(await zhang.next_reply(), "完成")
    zhang.press_button(await reply_containing(zhang, Q_EXPOSURE), "否")
    await reply_containing(zhang, Q_PHOTO)
    zhang.send_photo(content=content)
    zhang.press_button(await reply_containing(zhang, SUMMARY), "确认提交")
    await reply_containing(zhang, "打卡成功")
    await daka.settled()


@pytest.mark.parametrize(
    ("content", "name"),
    [(PANORAMA, "2024001-2026-11-28-1.jpg"), (GIF, "2024001-2026-11-28-1.gif")],
    ids=["refused-as-a-photo", "not-a-jpeg-or-png"],
)
async def test_a_photo_telegram_will_not_take_as_one_reaches_the_manager_as_a_document(
    daka: Daka, server: FakeBotAPI, content: bytes, name: str
) -> None:
    """Regression: sendPhoto refused a picture whose sides add up past 10000
    (PHOTO_INVALID_DIMENSIONS) and the manager got the press's answer and no photo; a GIF
    went as a photo too. Both now go as a document, with the caption."""
    await checked_in_with(daka, server, content)
    counselor = server.user(CLASS_ONE)
    view = await counselor.ask("/member 2024001")
    [[label]] = view.buttons
    counselor.press_button(view, label)
    sent = await counselor.next_reply()
    await daka.settled()
    assert sent.document is not None and not sent.photo
    assert server.file_bytes(str(sent.document["file_id"])) == content
    assert sent.document.get("file_name") == name
    assert "张三" in sent.text and DAY in sent.text
    refused = server.calls_of("sendPhoto")
    assert len(refused) == (1 if content is PANORAMA else 0)
