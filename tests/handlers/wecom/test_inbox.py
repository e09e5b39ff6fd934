"""What WeCom acknowledged is handled once and answered, whatever happens: WeCom's retries of a
message already taken (before and after a restart), a crash between the journal and the
handling, a crash after the handling while the replies were on their way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from domain.conversation.io import Command, Input
from domain.conversation.turn import Turn
from handlers.wecom.messages import TextMessage
from handlers.wecom.replies import Record, ReplySender
from handlers.wecom.turns import Converse
from storage.models import InboundEvent
from storage.repos.accounts import ErasedMeanwhile
from storage.repos.inbox import InboxRepo
from tests.handlers.wecom.conftest import AGENT
from tests.handlers.wecom.world import WeComDaka, texts


async def journal(app: WeComDaka) -> list[InboundEvent]:
    async with app.sessions() as session:
        return list((await session.exec(select(InboundEvent))).all())


async def test_a_retried_message_is_handled_once_even_after_a_restart(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    first = await zhangsan.says("你好")
    assert len(first) == 1
    assert app.driver is not None and app.channel is not None
    pushed = app.driver.pushes[-1]

    again = await app.driver.push(pushed.xml)  # WeCom's second try, same MsgId
    assert again.acknowledged
    await app.restart()  # what the endpoint remembered is gone; the journal remains
    assert app.driver is not None and app.channel is not None
    third = await app.driver.push(pushed.xml)
    assert third.acknowledged
    await app.settled()

    assert len(zhangsan.screen()) == 1  # answered once
    assert app.channel.inbox.duplicates == 1  # the journal knew it after the restart
    [row] = await journal(app)
    assert row.handled_at is not None and row.payload is None  # what was sent is not kept
    assert row.replies is None and row.replied_at is not None


async def test_a_crash_between_the_journal_and_the_handling_loses_nothing(
    app: WeComDaka,
) -> None:
    await app.org()
    stuck = asyncio.Event()

    async def hangs(turn: Turn, given: Input) -> None:
        await stuck.wait()  # the process dies before this turn ends

    await app.start(converse=hangs)
    zhangsan = app.member("zhangsan")
    assert app.driver is not None
    pushed = await app.driver.send_text("zhangsan", "/help")
    assert pushed.acknowledged  # WeCom will not send it again
    await app.crash()
    assert zhangsan.screen() == []
    [row] = await journal(app)
    assert row.handled_at is None and row.payload is not None

    await app.start()  # the next start handles it
    assert "/checkin" in texts(zhangsan.screen())
    [row] = await journal(app)
    assert row.handled_at is not None and row.replied_at is not None


async def test_replies_a_crash_held_back_are_sent_on_the_next_start(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    held = asyncio.Event()
    app.wecom.fail("/cgi-bin/message/send", hold=held)  # WeCom takes its time answering
    assert app.driver is not None and app.channel is not None
    sending = asyncio.Event()

    class Noting(ReplySender):
        async def send(self, user: str, records: Sequence[Record]) -> None:
            sending.set()  # handled and committed: the reply is on its way
            await super().send(user, records)

    app.channel.inbox.replies = Noting(app.channel.api)
    await app.driver.send_text("zhangsan", "/help")
    await asyncio.wait_for(sending.wait(), timeout=30)
    await app.crash()
    held.set()
    [row] = await journal(app)
    assert row.handled_at is not None and row.replies is not None and row.replied_at is None

    await app.start()
    assert len(zhangsan.screen()) == 1 and "/checkin" in zhangsan.screen()[0].text
    [row] = await journal(app)
    assert row.replies is None and row.replied_at is not None


async def test_a_turn_that_fails_is_answered_with_an_apology_in_the_members_language(
    app: WeComDaka, caplog: pytest.LogCaptureFixture
) -> None:
    await app.org(language="en")
    await app.org("village", name="幸福村", language="zh", served=False)

    async def fails(turn: Turn, given: Input) -> None:
        raise RuntimeError("a bug")

    await app.start(converse=fails)
    zhangsan = app.member("zhangsan")
    assert app.driver is not None
    assert (await app.driver.send_text("zhangsan", "/help")).acknowledged
    await app.settled()
    assert texts(zhangsan.screen()) == (
        "Sorry, something went wrong on our side. Please try again in a moment."
    )
    [row] = await journal(app)
    assert row.handled_at is not None  # answered once, not tried for ever
    assert "a bug" in caplog.text


async def test_one_members_events_are_handled_one_at_a_time_in_the_order_taken(
    app: WeComDaka,
) -> None:
    """What per-member order rests on, and why WeCom's callbacks go to one process: the
    inbox's lane of a member is in the process that took the events. Zhangsan's second
    message waits for his first turn to end, although it was acknowledged at once; Lisi's
    is handled meanwhile. (A second process taking his second message would not know of the
    first: docs/wecom.md, "Replicas".)"""
    await app.org()
    gate, lisi_done = asyncio.Event(), asyncio.Event()
    log: list[str] = []

    async def slow_first(turn: Turn, given: Input) -> None:
        said = given.name if isinstance(given, Command) else "?"
        log.append(f"{turn.person.external_id} {said} begins")
        if said == "help":
            await gate.wait()
        log.append(f"{turn.person.external_id} {said} ends")
        if turn.person.external_id == "lisi":
            lisi_done.set()

    await app.start(converse=slow_first)
    assert app.driver is not None and app.channel is not None
    for userid, said in (("zhangsan", "/help"), ("zhangsan", "/today"), ("lisi", "/history")):
        assert (await app.driver.send_text(userid, said)).acknowledged
    await asyncio.wait_for(lisi_done.wait(), timeout=30)
    assert log == ["zhangsan help begins", "lisi history begins", "lisi history ends"]
    gate.set()
    await app.settled()
    assert log[3:] == ["zhangsan help ends", "zhangsan today begins", "zhangsan today ends"]
    rows = sorted(await journal(app), key=lambda row: row.id or 0)
    assert all(row.handled_at is not None for row in rows)


def _command(user: str, text: str, msg_id: int) -> TextMessage:
    return TextMessage(
        user=user, agent_id=AGENT, created=1_700_000_000, content=text, msg_id=str(msg_id)
    )


def _recording(heard: list[tuple[str, str]], *, fails_for: str = "") -> Converse:
    async def converse(turn: Turn, given: Input) -> None:
        assert isinstance(given, Command)
        heard.append((turn.person.external_id, given.args))
        if turn.person.external_id == fails_for:
            raise RuntimeError("a bug in one turn")
        await turn.out.say(f"heard {given.args}")

    return converse


async def test_callbacks_arriving_together_are_journaled_in_one_transaction_and_handled_in_order(
    app: WeComDaka,
) -> None:
    await app.org()
    heard: list[tuple[str, str]] = []
    await app.start(converse=_recording(heard))
    assert app.channel is not None
    inbox = app.channel.inbox
    members = {user: app.member(user) for user in ("zhangsan", "lisi")}
    events = [
        _command("zhangsan", "/help 1", 1),
        _command("lisi", "/help 1", 2),
        _command("zhangsan", "/help 2", 3),
        _command("zhangsan", "/help 3", 4),
        _command("lisi", "/help 2", 5),
    ]
    writes = inbox.journal_writes

    await asyncio.gather(*(inbox.take(event) for event in events))  # all acknowledged
    assert inbox.journal_writes == writes + 1  # one commit for all five
    assert len(await journal(app)) == 5
    await app.settled()

    assert [args for user, args in heard if user == "zhangsan"] == ["1", "2", "3"]
    assert [args for user, args in heard if user == "lisi"] == ["1", "2"]
    assert len(heard) == 5  # each handled once
    assert inbox.batches >= 1  # the two members' first turns shared a transaction
    assert texts(members["zhangsan"].screen()) == "heard 1\n---\nheard 2\n---\nheard 3"
    assert texts(members["lisi"].screen()) == "heard 1\n---\nheard 2"
    rows = await journal(app)
    assert all(r.handled_at is not None and r.payload is None for r in rows)
    assert all(r.replied_at is not None and r.replies is None for r in rows)

    await asyncio.gather(*(inbox.take(event) for event in events[:2]))  # WeCom's retries
    await app.settled()
    assert inbox.duplicates == 2 and len(heard) == 5


async def test_many_members_at_once_over_http_are_each_acknowledged_and_answered_once(
    app: WeComDaka,
) -> None:
    await app.org()
    heard: list[tuple[str, str]] = []
    await app.start(converse=_recording(heard))
    assert app.driver is not None
    users = [f"member{n:02d}" for n in range(12)]
    members = [app.member(user) for user in users]

    pushed = await asyncio.gather(*(app.driver.send_text(u, "/help x") for u in users))
    assert all(p.statuses == [200] for p in pushed)
    await app.settled()

    assert sorted(user for user, _ in heard) == users
    assert all(texts(m.screen()) == "heard x" for m in members)
    assert len(await journal(app)) == len(users)


async def test_a_journal_that_cannot_be_written_answers_500_and_wecoms_retry_is_taken(
    app: WeComDaka, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await app.org()
    heard: list[tuple[str, str]] = []
    await app.start(converse=_recording(heard))
    assert app.driver is not None
    zhangsan = app.member("zhangsan")
    kept = InboxRepo.journal_many
    failures = [OperationalError("INSERT", {}, Exception("disk I/O error"))]

    async def journal_many(self: InboxRepo, **kwargs: Any) -> dict[str, int]:
        if failures:
            raise failures.pop()
        return await kept(self, **kwargs)

    monkeypatch.setattr(InboxRepo, "journal_many", journal_many)
    pushed = await app.driver.send_text("zhangsan", "/help once")
    assert pushed.statuses == [500, 200]  # not acknowledged until it was kept
    await app.settled()

    assert heard == [("zhangsan", "once")]
    assert texts(zhangsan.screen()) == "heard once"
    [row] = await journal(app)
    assert row.handled_at is not None
    assert "disk I/O error" in caplog.text


async def test_a_turn_failing_among_others_costs_only_its_own_event(
    app: WeComDaka, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.wecom.inbox")
    await app.org()
    heard: list[tuple[str, str]] = []
    await app.start(converse=_recording(heard, fails_for="lisi"))
    assert app.channel is not None
    inbox = app.channel.inbox
    members = {user: app.member(user) for user in ("zhangsan", "lisi", "wangwu")}
    events = [_command(user, "/help x", n) for n, user in enumerate(members)]

    await asyncio.gather(*(inbox.take(event) for event in events))
    await app.settled()

    assert texts(members["zhangsan"].screen()) == "heard x"  # answered once, not twice
    assert texts(members["wangwu"].screen()) == "heard x"
    assert texts(members["lisi"].screen()) == "抱歉，系统出了点问题，请稍后再试。"  # once
    assert "3 turns together failed" in caplog.text  # then each on its own
    rows = await journal(app)
    assert len(rows) == 3 and all(r.handled_at is not None for r in rows)


async def test_a_turn_an_erasure_keeps_rolling_back_is_tried_three_times_then_apologised(
    app: WeComDaka,
) -> None:
    """Regression: `except ErasedMeanwhile: continue` ran the turn again for ever."""
    await app.org()
    tries = 0

    async def always_erased(turn: Turn, given: Input) -> None:
        nonlocal tries
        tries += 1
        raise ErasedMeanwhile([1])

    await app.start(converse=always_erased)
    zhangsan = app.member("zhangsan")
    assert app.driver is not None
    assert (await app.driver.send_text("zhangsan", "/help")).acknowledged
    await app.settled()
    assert tries == 3
    assert texts(zhangsan.screen()) == "抱歉，系统出了点问题，请稍后再试。"
    [row] = await journal(app)
    assert row.handled_at is not None


async def test_a_turn_an_erasure_rolled_back_once_runs_again(app: WeComDaka) -> None:
    await app.org()
    tries = 0

    async def erased_once(turn: Turn, given: Input) -> None:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise ErasedMeanwhile([1])
        await turn.out.say("again")

    await app.start(converse=erased_once)
    zhangsan = app.member("zhangsan")
    assert app.driver is not None
    await app.driver.send_text("zhangsan", "/help")
    await app.settled()
    assert tries == 2 and texts(zhangsan.screen()) == "again"
