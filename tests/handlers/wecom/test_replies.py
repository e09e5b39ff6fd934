"""Replies sent after the commit, against the local WeCom: in order, cards changed in place or
sent anew when the code is spent, files uploaded and sent, failures tried again or given up
on as the error policy says."""

from __future__ import annotations

import pytest

from handlers.wecom import replies
from handlers.wecom.api import WeComAPI
from handlers.wecom.cards import Button, button_card
from handlers.wecom.replies import ReplySender
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.conftest import AGENT


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def sender(api: WeComAPI, waits: list[float]) -> ReplySender:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)  # the tests' time does not pass by itself

    return ReplySender(api, sleep=sleep)


def card(task: str, title: str = "问题") -> dict[str, object]:
    return button_card(task_id=task, title=title, buttons=[Button("是", "k:yes")])


async def test_texts_and_cards_arrive_in_order(wecom: LocalWeCom, sender: ReplySender) -> None:
    await sender.send(
        "zhangsan", [replies.text("一"), replies.send_card(card("t1")), replies.text("二")]
    )
    assert [d.text for d in wecom.inbox("zhangsan")] == ["一", "问题", "二"]


async def test_a_card_is_changed_in_place_once_then_sent_anew(
    wecom: LocalWeCom, sender: ReplySender
) -> None:
    await sender.send("zhangsan", [replies.send_card(card("t1"))])
    code = wecom.press(AGENT, "t1")
    change = replies.update(
        code, card=card("t1", "下一题"), otherwise=[replies.send_card(card("t2", "下一题"))]
    )
    await sender.send("zhangsan", [change])
    assert wecom.cards[(AGENT, "t1")].body["main_title"]["title"] == "下一题"
    await sender.send("zhangsan", [change])  # the same code again: WeCom refuses it
    assert [d.text for d in wecom.inbox("zhangsan")] == ["问题", "下一题"]
    assert (AGENT, "t2") in wecom.cards


async def test_a_picture_is_uploaded_and_sent_with_its_caption(
    wecom: LocalWeCom, sender: ReplySender
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    await sender.send("zhangsan", [replies.file("趋势.png", png, image=True, caption="近 7 天")])
    image, caption = wecom.inbox("zhangsan")
    assert image.msgtype == "image" and wecom.media[image.body["media_id"]].data == png
    assert wecom.media[image.body["media_id"]].filename == "趋势.png"
    assert caption.text == "近 7 天"


async def test_a_file_that_cannot_be_made_says_so(wecom: LocalWeCom, sender: ReplySender) -> None:
    await sender.send("zhangsan", [replies.made("no-such-maker", {}, "a.xlsx", "做不出来", "")])
    assert [d.text for d in wecom.inbox("zhangsan")] == ["做不出来"]


async def test_a_busy_wecom_is_tried_again_and_a_member_out_of_reach_given_up(
    wecom: LocalWeCom, sender: ReplySender, waits: list[float]
) -> None:
    wecom.fail("/cgi-bin/message/send", errcode=-1, times=2)  # 系统繁忙
    await sender.send("zhangsan", [replies.text("到了")])
    assert [d.text for d in wecom.inbox("zhangsan")] == ["到了"] and waits == [1.0, 2.0]
    await sender.send("stranger", [replies.text("一"), replies.text("二")])
    calls = [c for c in wecom.calls if c.path == "/cgi-bin/message/send" and c.errcode == 81013]
    assert len(calls) == 1  # the second reply is not even tried
