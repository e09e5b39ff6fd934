"""The outbox's letters as WeCom messages: a reminder's "check in now" as a card button (or, for
an organisation shown text only, a word to reply), and WeCom's answers as neutral outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from domain.delivery import Refused, Sent, Unreachable
from domain.i18n import create_translator
from domain.keys import CHECKIN_NOW
from handlers.wecom.api import WeComAPI
from handlers.wecom.courier import WeComCourier
from tests.fakewecom import LocalWeCom


@dataclass
class Letter:
    address: str
    text: str
    options: list[list[dict[str, str]]] | None = None
    org_id: int = 1


REMINDER = Letter(
    "ZhangSan",
    "⏰ <b>张三</b>，您今天（2026-11-28）还没有打卡。",
    [[{"label": "✅ 立即打卡", "key": CHECKIN_NOW}]],
)


async def test_a_reminder_comes_with_a_card_whose_button_checks_in(
    wecom: LocalWeCom, api: WeComAPI
) -> None:
    assert isinstance(await WeComCourier(api).deliver(REMINDER), Sent)
    [card] = wecom.inbox("zhangsan")
    assert card.msgtype == "template_card" and card.button_keys() == [CHECKIN_NOW]
    assert card.body["main_title"]["title"] == "⏰ 张三，您今天（2026-11-28）还没有打卡。"


async def test_text_only_members_are_told_the_word_to_reply(
    wecom: LocalWeCom, api: WeComAPI
) -> None:
    async def text_only() -> bool:
        return True

    i18n = create_translator()
    with i18n.context(), i18n.use_locale("zh_Hans"):
        assert isinstance(await WeComCourier(api, text_only=text_only).deliver(REMINDER), Sent)
    [text] = wecom.inbox("zhangsan")
    assert text.msgtype == "text" and text.text.endswith("回复“打卡”：✅ 立即打卡")


async def test_wecoms_answers_are_neutral_outcomes(api: WeComAPI) -> None:
    courier = WeComCourier(api)
    assert isinstance(await courier.deliver(Letter("nobody", "你好")), Unreachable)
    broken = Letter("zhangsan", "你好", [[{"key": "x"}]])
    assert isinstance(await courier.deliver(broken), Refused)
    assert isinstance(await courier.deliver(Letter("a|b", "你好")), Refused)
