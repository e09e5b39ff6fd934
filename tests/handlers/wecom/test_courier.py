"""The outbox's letters as WeCom messages: a reminder's "check in now" as a card button (or, for
an organisation shown text only, a word to reply), and WeCom's answers as neutral outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import select

from domain.clock import FixedClock
from domain.delivery import Refused, Sent, Unreachable
from domain.i18n import create_translator
from domain.keys import CHECKIN_NOW
from handlers.wecom.api import WeComAPI
from handlers.wecom.courier import WeComCourier
from handlers.wecom.messages import CHANNEL
from handlers.wecom.replies import ReplySender, text
from scheduler.sender import Sender
from storage.db import SessionFactory
from storage.models import Outbox
from storage.repo import Repo
from storage.schedules import Letter as Posted
from storage.schedules import OutboxRepo
from tests.fakewecom import LocalWeCom
from tests.storage.seeding import create_org


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


async def test_replies_count_in_a_members_window_and_a_letter_waits_for_the_room_they_took(
    wecom: LocalWeCom, api: WeComAPI, clock: FixedClock, sessions: SessionFactory
) -> None:
    """Zhangsan has just chatted: 30 replies this minute, WeCom's limit for one member. The
    alert written now would be his 31st message, which WeCom would drop without a word: it
    goes back to the outbox until the minute is over. A reply past the limit is sent all the
    same: it answers him, and holding it back would put it after what he writes next."""
    replies = ReplySender(api)
    for i in range(30):
        await replies.send("zhangsan", [text(f"回复 {i}")])
    async with sessions() as session:
        org = await create_org(Repo(session), slug="no1", name="第一中学", now=clock.now())
        letter = Posted(
            org_id=org.id or 0,
            channel=CHANNEL,
            address="ZhangSan",
            kind="alert",
            day=clock.now().date(),
            slot="a1",
            text="⚠️ 李四 体温异常",
        )
        await OutboxRepo(session).enqueue([letter], now=clock.now())
        await session.commit()
    sender = Sender({CHANNEL: WeComCourier(api)}, sessions, clock)

    stats = await sender.drain()
    assert (stats.sent, stats.deferred) == (0, 1)
    async with sessions() as session:
        [row] = (await session.exec(select(Outbox))).all()
    assert (row.status, row.not_before) == ("pending", clock.now() + timedelta(minutes=1))
    assert len(wecom.inbox("zhangsan")) == 30 and wecom.dropped() == []

    clock.advance(timedelta(seconds=30))
    await replies.send("zhangsan", [text("还有一句")])  # past the limit: sent all the same
    assert [d.text for d in wecom.dropped("zhangsan")] == ["还有一句"]  # as WeCom would
    clock.advance(timedelta(seconds=29))
    assert (await sender.drain()).sent == 0  # not yet: the minute is not over
    clock.advance(timedelta(seconds=1))
    assert (await sender.drain()).sent == 1
    assert wecom.inbox("zhangsan")[-1].text == "⚠️ 李四 体温异常"
    assert wecom.dropped() == [wecom.dropped("zhangsan")[0]]  # the letter was not dropped


LONG = Letter(
    "ZhangSan",
    "⚠️ 以下成员今天体温异常：" + "、".join(f"成员{i:02d}（38.{i % 10}℃）" for i in range(20)),
    [[{"label": "✅ 立即打卡", "key": CHECKIN_NOW}]],
)


async def test_a_long_text_and_its_card_wait_until_both_fit_in_the_members_minute(
    wecom: LocalWeCom, api: WeComAPI, clock: FixedClock, sessions: SessionFactory
) -> None:
    """Regression ("the second message of a letter dropped"): 29 of Zhangsan's 30 messages of
    the minute are taken; a letter of a long text and its card is two messages, so it waits
    until the first reply leaves the minute rather than go with room for one (WeCom would
    drop the card without a word)."""
    courier = WeComCourier(api)
    assert (await courier.messages(LONG), await courier.messages(REMINDER)) == (2, 1)
    assert await courier.messages(Letter("a|b", "你好")) == 1
    replies = ReplySender(api)
    await replies.send("zhangsan", [text("回复 0")])
    clock.advance(timedelta(seconds=10))
    for i in range(1, 29):
        await replies.send("zhangsan", [text(f"回复 {i}")])
    async with sessions() as session:
        org = await create_org(Repo(session), slug="no1", name="第一中学", now=clock.now())
        letter = Posted(
            org_id=org.id or 0,
            channel=CHANNEL,
            address=LONG.address,
            kind="alert",
            day=clock.now().date(),
            slot="a1",
            text=LONG.text,
            options=LONG.options,
        )
        await OutboxRepo(session).enqueue([letter], now=clock.now())
        await session.commit()
    sender = Sender({CHANNEL: courier}, sessions, clock)

    stats = await sender.drain()
    assert (stats.sent, stats.deferred) == (0, 1)
    async with sessions() as session:
        [row] = (await session.exec(select(Outbox))).all()
    assert row.not_before == clock.now() + timedelta(seconds=50)  # the first reply's minute
    clock.advance(timedelta(seconds=49))
    assert (await sender.drain()).sent == 0
    clock.advance(timedelta(seconds=1))
    assert (await sender.drain()).sent == 1
    sent = wecom.inbox("zhangsan")[-2:]
    assert [m.msgtype for m in sent] == ["text", "template_card"]
    assert wecom.dropped() == []
