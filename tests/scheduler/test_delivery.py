"""The sender against Telegram's limits and failures: 429 pauses, 403 blocks, 5xx retries.
Each letter reaches its chat exactly once, or is written off; nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlmodel import col, select

from domain.delivery import TELEGRAM, Outcome, Pace
from domain.i18n import create_translator
from domain.keys import CHECKIN_NOW, link, option
from handlers.telegram.courier import TelegramCourier
from scheduler.jobs import SchedulerService
from scheduler.sender import Sender
from storage.models import Member, Outbox
from storage.repo import Repo, RosterRow
from storage.schedules import Letter, OutboxRepo
from tests.fakebot import Call, SentMessage
from tests.handlers.conftest import reply_containing
from tests.scheduler.conftest import School
from tests.scheduler.test_reminders import TUESDAY, enrol_all
from tests.storage.seeding import telegram_account

REMINDER = "还没有打卡，请立即打卡"
MISSING = "截止时仍未打卡"
UNREACHABLE = "联系不上（已屏蔽机器人）"
ADMIN = 103


def sender(
    school: School,
    *,
    rate: float = 25.0,
    per_chat_interval: float = 1.0,
    backoff_cap: float = 30.0,
    max_attempts: int = 4,
) -> Sender:
    """A sender of its own (the fixture's sends at 200/s)."""
    assert school.daka.bot is not None
    courier = TelegramCourier(school.daka.bot, Pace(rate, per_chat_interval))
    return Sender(
        {TELEGRAM: courier},
        school.daka.sessions,
        school.clock,
        backoff_cap=backoff_cap,
        max_attempts=max_attempts,
    )


async def seed_members(school: School, count: int, first: int = 5000) -> list[int]:
    """`count` more enrolled members in 工程学院/三班; their Telegram ids."""
    org_id = school.daka.org_ids["school"]
    ids = list(range(first, first + count))
    async with school.daka.sessions() as session:
        repo = Repo(session)
        await repo.members.import_roster(
            org_id=org_id,
            rows=[
                RosterRow(line=i + 2, unit="工程学院/三班", member_id=str(tid), name=f"学生{i}")
                for i, tid in enumerate(ids)
            ],
        )
        for tid in ids:
            member = await repo.members.by_external(org_id=org_id, external_id=str(tid))
            assert member is not None
            account_id = await telegram_account(repo, tid, now=school.clock.now())
            await repo.members.bind(member=member, account_id=account_id, now=school.clock.now())
        await session.commit()
    return ids


def reminders(school: School, chat_id: int) -> list[SentMessage]:
    return [m for m in school.server.messages(chat_id) if REMINDER in m.text]


def sends(school: School, chat_id: int) -> list[Call]:
    return [c for c in school.server.calls_for(chat_id) if c.method == "sendMessage"]


def delivered(school: School, chat_id: int) -> int:
    return sum(1 for c in sends(school, chat_id) if c.ok)


async def letters(school: School, chat_id: int) -> Sequence[Outbox]:
    async with school.daka.sessions() as session:
        stmt = select(Outbox).where(Outbox.address == str(chat_id)).order_by(col(Outbox.id))
        return (await session.exec(stmt)).all()


async def member(school: School, external_id: str) -> Member:
    return await school.daka.member(external_id)


# ---------------------------------------------------------------------------- 429


async def test_the_sender_keeps_under_telegrams_limits_and_recovers_from_429(
    school: School,
) -> None:
    chats = await seed_members(school, 60)
    school.server.enforce_limits(global_per_second=30, per_chat_per_second=1)

    [first] = await school.at("08:00")
    assert first.enqueued == 60
    started = time.monotonic()
    stats = await sender(school, rate=25).drain()
    assert stats.sent == 60
    assert school.server.count_429 == 0
    assert time.monotonic() - started < 4
    for chat in chats:
        assert len(reminders(school, chat)) == 1

    # Far over the limit: Telegram answers 429, the sender waits and sends the same letters.
    [second] = await school.at("10:00")
    assert second.enqueued == 60
    greedy = sender(school, rate=200)
    stats = await asyncio.wait_for(greedy.drain(), timeout=8)
    assert school.server.count_429 > 0
    assert stats.rate_limited == school.server.count_429
    assert (stats.sent, stats.failed) == (60, 0)
    for chat in chats:
        assert delivered(school, chat) == 2  # 08:00 and 10:00, once each
        assert len(reminders(school, chat)) == 2
        assert all(x.status == "sent" for x in await letters(school, chat))


async def test_a_429_pauses_the_sender_and_the_same_letter_goes_once(school: School) -> None:
    await school.enrol(12, "1002")
    await school.at("08:00")
    school.server.fail("sendMessage", 429, retry_after=1, times=1)
    stats = await sender(school, rate=25).drain()
    assert (stats.sent, stats.rate_limited, stats.failed) == (1, 1, 0)
    refused, accepted = sends(school, 12)
    assert (refused.status, accepted.status) == (429, 200)
    assert accepted.at - refused.at >= 0.95  # retry_after was honoured
    assert len(reminders(school, 12)) == 1
    [letter] = await letters(school, 12)
    assert (letter.status, letter.attempts) == ("sent", 1)


async def test_after_a_429_the_sender_resumes_at_its_pace_not_in_a_burst(
    school: School,
) -> None:
    chats = await seed_members(school, 40)
    school.server.enforce_limits(global_per_second=30, per_chat_per_second=1)
    await school.at("08:00")
    school.server.fail("sendMessage", 429, retry_after=1, times=1)
    stats = await asyncio.wait_for(sender(school, rate=25).drain(), timeout=8)
    assert stats.sent == 40
    assert school.server.count_429 == 1  # the injected one; the limits were never hit
    for chat in chats:
        assert delivered(school, chat) == 1


async def test_a_stop_during_a_pause_puts_the_unsent_letters_back_at_once(
    school: School,
) -> None:
    """Telegram asks for a 20 s pause in the middle of a round and the process is told to
    stop (a deploy, `docker stop`'s 10 s): the sender does not wait the pause out. What went
    out is recorded as sent, the rest goes back to the outbox as it was, and the next sender
    sends each of those once."""
    chats = await seed_members(school, 6)
    await school.at("08:00")
    school.server.fail("sendMessage", 429, retry_after=20, times=1)
    stop = asyncio.Event()
    first = sender(school, rate=200, per_chat_interval=0.01)
    draining = asyncio.create_task(first.drain(stop=stop))
    await school.server.wait_for(lambda: school.server.count_429 == 1, timeout=30)
    stop.set()
    stats = await asyncio.wait_for(draining, timeout=10)  # a ceiling, far under the pause

    assert stats.rate_limited == 1
    rows = [x for chat in chats for x in await letters(school, chat)]
    back = [x for x in rows if x.status == "pending"]
    assert len(back) == len(chats) - stats.sent and back
    assert all(x.claimed_by is None and x.claimed_at is None for x in back)
    assert all(x.attempts == 0 for x in back)

    again = await sender(school, rate=200, per_chat_interval=0.01).drain()
    assert again.sent == len(back)
    for chat in chats:
        assert delivered(school, chat) == 1


@dataclass
class Unanswered:
    """A channel that takes a letter and never answers (a hung connection)."""

    channel: str = TELEGRAM
    pace: Pace = field(default_factory=lambda: Pace(200.0, 0.0))
    taken: asyncio.Event = field(default_factory=asyncio.Event)

    async def deliver(self, letter: object) -> Outcome:
        self.taken.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")


async def test_a_stop_does_not_wait_for_a_letter_never_answered(school: School) -> None:
    """The channel never answers a letter: the process still stops within the sender's
    grace, and the letter, left claimed, goes once another sender takes it after its lease."""
    [chat] = await seed_members(school, 1)
    await school.at("08:00")
    hung = Unanswered()
    service = SchedulerService(
        {TELEGRAM: hung}, school.daka.sessions, school.clock, create_translator(), send_grace=0.2
    )
    scheduler, sending = service.start()
    await asyncio.wait_for(hung.taken.wait(), timeout=30)
    await asyncio.wait_for(service.stop(scheduler, sending), timeout=30)

    assert sending.cancelled() or sending.done()
    [left] = await letters(school, chat)
    assert (left.status, left.claimed_by is not None) == ("sending", True)
    school.clock.advance(timedelta(minutes=3))  # past its lease
    assert (await sender(school, rate=200, per_chat_interval=0.01).drain()).sent == 1
    assert delivered(school, chat) == 1


# ---------------------------------------------------------------------------- 403


async def test_a_member_who_blocked_the_bot_is_unreachable_until_they_write_again(
    school: School,
) -> None:
    await enrol_all(school)
    await school.grant(ADMIN, None, "admin")
    school.server.block(13)  # 王五
    await school.at("08:00")
    stats = await school.send()
    assert (stats.sent, stats.blocked) == (4, 1)
    [letter] = await letters(school, 13)
    assert letter.status == "blocked"
    assert (await member(school, "1003")).unreachable_since == school.clock.now()
    assert (await member(school, "1002")).unreachable_since is None

    # The next round leaves them out; the cutoff list says they cannot be reached.
    [ten] = await school.at("10:00")
    assert ten.enqueued == 4
    await school.send()
    assert len(sends(school, 13)) == 1  # only the refused 08:00 attempt
    await school.at("14:00")
    await school.send()
    [missing] = [m.text for m in school.server.messages(ADMIN) if MISSING in m.text]
    assert f"• 王五 (1003, 工程学院/一班) — {UNREACHABLE}" in missing
    assert "• 李四 (1002, 工程学院/一班)\n" in missing

    # They unblock the bot and write to it: reachable again, reminded the next morning.
    school.server.unblock(13)
    user = school.server.user(13)
    user.send("/today")
    await reply_containing(user, "还没有打卡")
    await school.daka.settled()
    assert (await member(school, "1003")).unreachable_since is None
    [tuesday] = await school.at("08:00", on=TUESDAY)
    assert tuesday.enqueued == 5
    await school.send()
    [reminder] = reminders(school, 13)
    assert "2026-12-01" in reminder.text


async def test_a_member_unreachable_when_the_round_ran_is_not_sent_to(school: School) -> None:
    """The round enqueued them; by send time another letter had bounced: skip, not retry."""
    await school.enrol(12, "1002")
    await school.at("08:00")
    async with school.daka.sessions() as session:
        found = await Repo(session).members.by_external(
            org_id=school.daka.org_ids["school"], external_id="1002"
        )
        assert found is not None
        found.unreachable_since = school.clock.now()
        session.add(found)
        await session.commit()
    stats = await school.send()
    assert (stats.sent, stats.skipped) == (0, 1)
    assert sends(school, 12) == []
    [letter] = await letters(school, 12)
    assert letter.status == "skipped"


async def test_chat_not_found_makes_the_member_unreachable_like_a_block(school: School) -> None:
    await school.enrol(12, "1002")
    await school.at("08:00")
    school.server.fail("sendMessage", 400, description="Bad Request: chat not found", chat_id=12)
    stats = await school.send()
    assert (stats.sent, stats.blocked, stats.failed) == (0, 1, 0)
    [letter] = await letters(school, 12)
    assert (letter.status, letter.error) == ("blocked", "Bad Request: chat not found")
    assert (await member(school, "1002")).unreachable_since == school.clock.now()


# ---------------------------------------------------------------------------- content


async def enqueue(school: School, *letters: Letter) -> None:
    async with school.daka.sessions() as session:
        await OutboxRepo(session).enqueue(letters, now=school.clock.now())
        await session.commit()


async def test_a_letters_options_become_telegram_buttons(school: School) -> None:
    """Keys go as callback data (a press comes back as the key), links as URL buttons, the
    light markup as Telegram HTML."""
    day = school.clock.now().date()
    await enqueue(
        school,
        Letter(
            org_id=school.daka.org_ids["school"],
            channel="telegram",
            address="12",
            kind="alert",
            day=day,
            slot="options",
            text="<b>Now</b> &amp; then",
            options=[
                [option("Check in", CHECKIN_NOW), option("Later", "later")],
                [link("Help", "https://example.org/help")],
            ],
        ),
    )
    stats = await school.send()
    assert stats.sent == 1
    [call] = sends(school, 12)
    assert call.params["text"] == "<b>Now</b> &amp; then"
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Check in", "callback_data": "go"},
                {"text": "Later", "callback_data": "later"},
            ],
            [{"text": "Help", "url": "https://example.org/help"}],
        ]
    }
    [message] = school.server.messages(12)
    assert message.text == "Now & then"


async def test_letters_of_a_channel_without_a_courier_wait_for_a_sender_that_has_one(
    school: School,
) -> None:
    day = school.clock.now().date()
    await enqueue(
        school,
        Letter(
            org_id=school.daka.org_ids["school"],
            channel="wecom",
            address="zhangsan",
            kind="alert",
            day=day,
            slot="elsewhere",
            text="hello",
        ),
    )
    stats = await school.send()
    assert stats.handled == 0
    async with school.daka.sessions() as session:
        [letter] = (await session.exec(select(Outbox))).all()
    assert (letter.channel, letter.status, letter.attempts) == ("wecom", "pending", 0)


# ---------------------------------------------------------------------------- other errors


async def test_an_unexpected_error_fails_one_letter_not_its_whole_batch(school: School) -> None:
    await enrol_all(school)
    await school.at("08:00")
    school.server.fail("sendMessage", 404, times=1, chat_id=12)
    stats = await school.send()
    assert (stats.sent, stats.failed) == (4, 1)
    [letter] = await letters(school, 12)
    assert letter.status == "failed"
    for chat in (11, 13, 21, 31):
        assert [x.status for x in await letters(school, chat)] == ["sent"]
    # Later drains, even after the lease of a dead sender would have run out, send nothing.
    school.clock.advance(timedelta(minutes=5))
    again = await school.send()
    assert again.handled == stats.handled
    for chat in (11, 13, 21, 31):
        assert delivered(school, chat) == 1
    assert reminders(school, 12) == []


# ---------------------------------------------------------------------------- 5xx


async def test_a_server_error_is_retried_and_the_letter_delivered_once(school: School) -> None:
    await school.enrol(12, "1002")
    await school.at("08:00")
    school.server.fail("sendMessage", 502, times=2)
    stats = await asyncio.wait_for(
        sender(school, backoff_cap=0.05, per_chat_interval=0.05).drain(), timeout=5
    )
    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)
    assert [c.status for c in sends(school, 12)] == [502, 502, 200]
    assert len(reminders(school, 12)) == 1
    [letter] = await letters(school, 12)
    assert (letter.status, letter.attempts) == ("sent", 3)


async def test_a_letter_that_keeps_failing_is_written_off_without_hanging(
    school: School,
) -> None:
    await school.enrol(12, "1002")
    await school.enrol(13, "1003")
    await school.at("08:00")
    school.server.fail("sendMessage", 502, times=10, chat_id=12)
    patient = sender(school, backoff_cap=0.05, per_chat_interval=0.05, max_attempts=4)
    stats = await asyncio.wait_for(patient.drain(), timeout=5)
    assert (stats.sent, stats.failed, stats.retried) == (1, 1, 3)
    assert [c.status for c in sends(school, 12)] == [502] * 4
    assert reminders(school, 12) == []
    [letter] = await letters(school, 12)
    assert (letter.status, letter.attempts) == ("failed", 4)
    assert letter.error and "Bad Gateway" in letter.error
    assert len(reminders(school, 13)) == 1  # the rest of the batch went out
    # A failed letter stays failed: the next drain does not pick it up again.
    school.server.clear_failures()
    again = await asyncio.wait_for(patient.drain(), timeout=5)
    assert again.sent == 1
    assert len(sends(school, 12)) == 4
