"""Each channel at its own pace: the sender keeps one rate and one pause per channel, so a slow
or paused channel never holds another back, and a recipient whose window is full (WeCom: 30 a
minute, 1,000 an hour per member) gets the letter later instead of losing it.

The couriers are in-process (`tests.scheduler.couriers`); the outbox is a real SQLite file and
the clock the tests move is the one the sender counts the recipients' windows in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import col, select

from domain.clock import FixedClock
from domain.delivery import Pace, RetryAfter
from scheduler.pacing import Lane
from scheduler.sender import Sender
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.models import Outbox
from storage.repo import Repo
from storage.schedules import Letter, OutboxRepo
from tests.conftest import MORNING
from tests.scheduler.couriers import Attempt, RecordingCourier
from tests.storage.seeding import create_org

WECOM_APP = Pace(rate_per_second=500, per_recipient_per_minute=30, per_recipient_per_hour=1000)


@dataclass
class Outboxes:
    """An organisation's outbox, a clock, and the log the tests' couriers share."""

    sessions: SessionFactory
    clock: FixedClock
    org_id: int
    log: list[Attempt]

    def courier(self, channel: str, pace: Pace, *answers: RetryAfter) -> RecordingCourier:
        return RecordingCourier(channel, pace, self.log, list(answers))

    def sender(self, *couriers: RecordingCourier) -> Sender:
        return Sender({c.channel: c for c in couriers}, self.sessions, self.clock)

    async def post(self, channel: str, address: str, *texts: str) -> None:
        """Letters to `address`, one a text, written in that order."""
        letters = [
            Letter(
                org_id=self.org_id,
                channel=channel,
                address=address,
                kind="alert",
                day=self.clock.now().date(),
                slot=text,
                text=text,
            )
            for text in texts
        ]
        async with self.sessions() as session:
            await OutboxRepo(session).enqueue(letters, now=self.clock.now())
            await session.commit()

    async def letters(self, address: str) -> Sequence[Outbox]:
        async with self.sessions() as session:
            stmt = select(Outbox).where(Outbox.address == address).order_by(col(Outbox.id))
            return (await session.exec(stmt)).all()


@pytest.fixture
async def outboxes(migrated_sqlite_url: str) -> AsyncIterator[Outboxes]:
    engine = create_engine(migrated_sqlite_url)
    sessions = create_session_factory(engine)
    async with sessions() as session:
        org = await create_org(Repo(session), slug="school", name="第一中学", now=MORNING)
        await session.commit()
    assert org.id is not None
    try:
        yield Outboxes(sessions, FixedClock(MORNING), org.id, [])
    finally:
        await engine.dispose()


def texts(n: int, prefix: str = "n") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


async def test_two_channels_are_paced_each_at_its_own_rate(outboxes: Outboxes) -> None:
    slow = outboxes.courier("slow", Pace(rate_per_second=1))
    fast = outboxes.courier("fast", Pace(rate_per_second=1000))
    await outboxes.post("slow", "a", "slow-1")
    await outboxes.post("slow", "b", "slow-2")
    for i in range(10):
        await outboxes.post("fast", f"f{i}", f"fast-{i}")
    stats = await outboxes.sender(slow, fast).drain()
    assert stats.sent == 12
    order = [a.text for a in outboxes.log]
    # The slow channel's second letter waits a second for its turn; the fast channel's ten
    # do not wait for it (one rate for both would have spaced all twelve a second apart).
    assert order[0] == "slow-1" and order[-1] == "slow-2"
    assert sorted(order[1:-1]) == sorted(f"fast-{i}" for i in range(10))


async def test_a_pause_on_one_channel_does_not_delay_the_other(outboxes: Outboxes) -> None:
    paused = outboxes.courier("paused", Pace(rate_per_second=100), RetryAfter(1.0, "429"))
    other = outboxes.courier("other", Pace(rate_per_second=100))
    await outboxes.post("paused", "a", "paused-1")
    await outboxes.post("paused", "b", "paused-2")
    for i in range(5):
        await outboxes.post("other", f"o{i}", f"other-{i}")
    stats = await outboxes.sender(paused, other).drain()
    assert (stats.sent, stats.rate_limited, stats.failed) == (7, 1, 0)
    first, *rest = outboxes.log
    assert (first.text, first.outcome) == ("paused-1", RetryAfter(1.0, "429"))
    # The other channel went on during the pause; the paused one sent nothing until it ended,
    # then both of its letters, the refused one once more.
    assert [a.channel for a in rest] == ["other"] * 5 + ["paused"] * 2
    assert sorted(paused.delivered()) == ["paused-1", "paused-2"]
    assert [x.status for x in await outboxes.letters("a")] == ["sent"]


async def test_a_recipient_over_30_a_minute_gets_the_rest_a_minute_later(
    outboxes: Outboxes,
) -> None:
    wecom = outboxes.courier("wecom", WECOM_APP)
    await outboxes.post("wecom", "zhangsan", *texts(35))
    await outboxes.post("wecom", "lisi", "for lisi")
    sender = outboxes.sender(wecom)
    stats = await sender.drain()
    assert (stats.sent, stats.deferred, stats.failed) == (31, 5, 0)
    assert wecom.delivered("zhangsan") == texts(30)
    assert wecom.delivered("lisi") == ["for lisi"]  # another member's window is their own
    put_back = [x for x in await outboxes.letters("zhangsan") if x.status != "sent"]
    assert [x.text for x in put_back] == texts(35)[30:]
    due = outboxes.clock.now() + timedelta(minutes=1)
    assert all((x.status, x.attempts, x.not_before) == ("pending", 0, due) for x in put_back)
    assert all(x.claimed_by is None for x in put_back)

    # One more, half a minute on, waits as long; none goes before the minute is over, then
    # all six, in the order they were written.
    outboxes.clock.advance(timedelta(seconds=30))
    await outboxes.post("wecom", "zhangsan", "n35")
    stats = await sender.drain()
    assert (stats.sent, stats.deferred) == (31, 6)
    [late] = [x for x in await outboxes.letters("zhangsan") if x.text == "n35"]
    assert (late.status, late.not_before) == ("pending", due)
    outboxes.clock.advance(timedelta(seconds=29))
    assert (await sender.drain()).sent == 31
    outboxes.clock.advance(timedelta(seconds=1))
    stats = await sender.drain()
    assert (stats.sent, stats.deferred) == (37, 6)
    assert wecom.delivered("zhangsan") == texts(36)
    assert [x.status for x in await outboxes.letters("zhangsan")] == ["sent"] * 36


async def test_a_recipient_over_the_hourly_limit_waits_for_the_hour(outboxes: Outboxes) -> None:
    wecom = outboxes.courier("wecom", Pace(rate_per_second=500, per_recipient_per_hour=3))
    await outboxes.post("wecom", "zhangsan", *texts(5))
    sender = outboxes.sender(wecom)
    assert ((await sender.drain()).sent, sender.stats.deferred) == (3, 2)
    outboxes.clock.advance(timedelta(minutes=30))
    assert (await sender.drain()).sent == 3
    outboxes.clock.advance(timedelta(minutes=30))
    assert (await sender.drain()).sent == 5
    assert wecom.delivered("zhangsan") == texts(5)


async def test_a_recipient_window_does_not_slow_the_channel_or_another_channel(
    outboxes: Outboxes,
) -> None:
    """While one member's letters wait for their window, everyone else's go at once."""
    wecom = outboxes.courier("wecom", WECOM_APP)
    telegram = outboxes.courier("telegram", Pace(rate_per_second=500, per_recipient_interval=1))
    await outboxes.post("wecom", "zhangsan", *texts(40))
    for i in range(20):
        await outboxes.post("wecom", f"m{i}", f"wecom-{i}")
        await outboxes.post("telegram", str(i), f"telegram-{i}")
    stats = await outboxes.sender(wecom, telegram).drain()
    assert (stats.sent, stats.deferred) == (70, 10)
    assert len(wecom.delivered()) == 50 and len(telegram.delivered()) == 20


@pytest.mark.parametrize(
    "pace",
    [
        {"rate_per_second": 0},
        {"rate_per_second": 10, "per_recipient_interval": -1},
        {"rate_per_second": 10, "per_recipient_per_minute": 0},
    ],
)
def test_a_pace_that_would_never_send_is_refused(pace: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"pace|limit"):
        Pace(**pace)  # type: ignore[arg-type]


async def test_a_pause_longer_than_the_lease_allows_puts_the_letters_back(
    outboxes: Outboxes,
) -> None:
    """A channel asks for a 10-minute pause: a claimed letter does not wait it out (its
    2-minute lease would lapse and another sender send it again); it and the channel's other
    letters go back to the outbox, due when the pause ends."""
    paused = outboxes.courier("paused", Pace(rate_per_second=100), RetryAfter(600.0, "429"))
    await outboxes.post("paused", "a", "paused-1")
    await outboxes.post("paused", "b", "paused-2")
    stats = await outboxes.sender(paused).drain()
    assert (stats.sent, stats.deferred, stats.failed) == (0, 2, 0)
    assert [a.text for a in outboxes.log] == ["paused-1"]  # asked once, refused
    for address in ("a", "b"):
        [letter] = await outboxes.letters(address)
        assert letter.status == "pending" and letter.claimed_by is None
        assert letter.not_before >= outboxes.clock.now() + timedelta(seconds=590)


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(25.0, 1.0), (30.0, 1.0), (500.0, 1.0), (5000.0, 10.0)],
)
async def test_the_rate_bucket_holds_one_send_unless_the_loop_cannot_space_them(
    rate: float, burst: float
) -> None:
    """At the rates channels allow (Telegram's 30 a second) a send waits its turn after each
    other; at thousands a second, the sends of 2 ms go together, since the event loop's timers
    (uvloop: whole milliseconds) cannot space them closer: the rate itself is kept."""
    lane = Lane(Pace(rate_per_second=rate))
    assert lane.limiter.max_rate == burst
    assert lane.limiter.time_period == pytest.approx(burst / rate)
    for _ in range(int(burst)):
        assert lane.limiter.has_capacity()
        await lane.acquire()
    assert not lane.limiter.has_capacity()  # the next one waits
