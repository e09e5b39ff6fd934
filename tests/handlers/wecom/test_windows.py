"""An app's count per member (Doc 90454: 30 a minute, 1,000 an hour), in this process or in
Redis (`REDIS_URL`), where every process sending on the app shares it: the callback server's
replies and a scheduler's letters count in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlmodel import select

from domain.clock import FixedClock
from domain.delivery import CountUnavailable, EveryWindows, RecipientWindows, Windows
from handlers.wecom.api import App, WeComAPI
from handlers.wecom.courier import WeComCourier
from handlers.wecom.messages import CHANNEL
from handlers.wecom.replies import ReplySender, text
from handlers.wecom.windows import PREFIX, RedisWindows
from scheduler.sender import COUNT_RETRY, Sender
from storage.db import SessionFactory
from storage.models import Outbox
from storage.repo import Repo
from storage.schedules import Letter as Posted
from storage.schedules import OutboxRepo
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.conftest import AGENT, SECRET
from tests.storage.seeding import create_org

BOTH = ((60.0, 30), (3600.0, 1000))
Make = Callable[[tuple[tuple[float, int], ...], Callable[[], float]], Windows]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest, redis: Redis) -> Make:
    """Builds a count of either kind (each its own app): the arithmetic is the same."""
    if request.param == "memory":
        return lambda windows, now: RecipientWindows(windows, now)
    apps = iter(range(1, 100))
    return lambda windows, now: RedisWindows(redis, f"ww:{next(apps)}", windows, now)


async def test_the_count_per_member_keeps_both_windows(make: Make) -> None:
    """Per member whatever the case of the userid, in the clock's seconds: the room is the
    time until the message that fills a window leaves it."""
    now = [1_765_000_000.0]
    start = now[0]
    windows = make(BOTH, lambda: now[0])
    for _ in range(30):
        assert await windows.count("ZhangSan")
    assert (await windows.room("zhangsan"), await windows.room("lisi")) == (60.0, 0.0)
    assert not await windows.count("zhangsan")  # past the minute: counted all the same
    now[0] = start + 30.0
    assert await windows.room("zhangsan") == 30.0

    hourly = make(BOTH, lambda: now[0])
    for i in range(1000):
        now[0] = start + i * 3.6  # 17 a minute: the minute's window never fills
        assert await hourly.count("lisi")
    now[0] = start + 3597.0
    assert await hourly.room("lisi") == pytest.approx(3.0)  # until the first is an hour old
    now[0] = start + 3600.0
    assert await hourly.room("lisi") == pytest.approx(0.0, abs=1e-6)


async def test_the_room_for_several_messages_is_the_time_until_that_many_have_left(
    make: Make,
) -> None:
    now = [1_765_000_000.0]
    start = now[0]
    windows = make(BOTH, lambda: now[0])
    for second in range(29):
        now[0] = start + second
        await windows.count("zhangsan")
    assert (await windows.room("zhangsan"), await windows.room("zhangsan", 2)) == (0.0, 32.0)
    assert await windows.room("zhangsan", 3) == 33.0  # until the first two are a minute old
    assert await windows.room("zhangsan", 31) == 60.0  # more than a minute: an empty one
    assert await windows.room("lisi", 2) == 0.0
    now[0] = start + 3600.0 + 28.0  # all an hour old: forgotten
    assert await windows.room("zhangsan", 30) == 0.0


async def test_several_apps_counts_are_seen_as_one_and_the_fullest_decides(make: Make) -> None:
    """With several apps, the sender sees every app's count per member (each app's replies
    counted in its own): a letter waits until every app has room for the member."""
    now = [1_765_000_000.0]
    first = make(((60.0, 30),), lambda: now[0])
    second = make(((60.0, 30),), lambda: now[0])
    every = EveryWindows((first, second))
    assert every.windows == first.windows
    for _ in range(30):
        await second.count("wangwu")  # replies of the second app
    now[0] += 20.0
    await first.count("wangwu")
    assert (await every.room("wangwu"), await every.room("zhangsan")) == (40.0, 0.0)
    with pytest.raises(TypeError):
        await every.count("wangwu")  # a message is counted by the app that sends it


async def test_a_members_times_are_one_set_trimmed_to_the_hour_and_expiring(
    redis: Redis,
) -> None:
    """One sorted set per app and member (lower-cased), of unique entries even for messages
    in the same instant, trimmed to the longest window, expiring an hour after the last."""
    now = [1_765_000_000.0]
    windows = RedisWindows(redis, "ww1:1000002", BOTH, lambda: now[0])
    for _ in range(3):
        await windows.count("ZhangSan")  # the same instant, three messages
    key = f"{PREFIX}ww1:1000002:zhangsan"
    assert await redis.keys(f"{PREFIX}*") == [key.encode()]
    assert await redis.zcard(key) == 3
    assert 3590 < await redis.ttl(key) <= 3601
    now[0] += 3600.0
    await windows.count("zhangsan")
    assert await redis.zcard(key) == 1  # the three are an hour old


async def test_a_redis_out_of_reach_is_told_not_guessed(redis_url: str) -> None:
    client = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1.0)
    windows = RedisWindows(client, "ww:1", BOTH, lambda: 0.0)
    with pytest.raises(CountUnavailable):
        await windows.room("zhangsan")
    with pytest.raises(CountUnavailable):
        await windows.count("zhangsan")
    await client.aclose()


async def _alert(sessions: SessionFactory, clock: FixedClock, address: str) -> None:
    async with sessions() as session:
        org = await create_org(Repo(session), slug="no1", name="第一中学", now=clock.now())
        letter = Posted(
            org_id=org.id or 0,
            channel=CHANNEL,
            address=address,
            kind="alert",
            day=clock.now().date(),
            slot="a1",
            text="⚠️ 李四 体温异常",
        )
        await OutboxRepo(session).enqueue([letter], now=clock.now())
        await session.commit()


async def _letter(sessions: SessionFactory) -> Outbox:
    async with sessions() as session:
        [row] = (await session.exec(select(Outbox))).all()
    return row


async def test_replies_of_one_process_hold_back_a_letter_of_another_sharing_the_count(
    wecom: LocalWeCom,
    session: aiohttp.ClientSession,
    clock: FixedClock,
    sessions: SessionFactory,
    redis: Redis,
) -> None:
    """`daka wecom` (the replies) and `daka scheduler` (the letters) are two processes, each
    with its own client of the app: with one Redis they keep one count. Zhangsan's 30 replies
    of the minute went through the first; the alert the second would send is his 31st, which
    WeCom would drop: it waits a minute, then goes."""
    app = App(wecom.corp_id, AGENT, SECRET)
    replying = WeComAPI(session, app, base_url=wecom.url, clock=clock, redis=redis)
    sending = WeComAPI(session, app, base_url=wecom.url, clock=clock, redis=redis)
    replies = ReplySender(replying)
    for i in range(30):
        await replies.send("zhangsan", [text(f"回复 {i}")])
    await _alert(sessions, clock, "ZhangSan")
    sender = Sender({CHANNEL: WeComCourier(sending)}, sessions, clock)

    stats = await sender.drain()
    assert (stats.sent, stats.deferred) == (0, 1)
    row = await _letter(sessions)
    assert (row.status, row.not_before) == ("pending", clock.now() + timedelta(minutes=1))
    assert len(wecom.inbox("zhangsan")) == 30

    clock.advance(timedelta(seconds=59))
    assert (await sender.drain()).sent == 0
    clock.advance(timedelta(seconds=1))
    assert (await sender.drain()).sent == 1
    assert wecom.inbox("zhangsan")[-1].text == "⚠️ 李四 体温异常"
    assert wecom.dropped() == []

    # Without Redis the two would each count their own, and the letter would have gone at once.
    alone = WeComAPI(session, app, base_url=wecom.url, clock=clock)
    assert isinstance(alone.recipients, RecipientWindows)
    assert await alone.recipients.room("zhangsan") == 0.0


async def test_with_redis_out_of_reach_a_reply_goes_and_a_letter_waits_briefly(
    wecom: LocalWeCom,
    session: aiohttp.ClientSession,
    clock: FixedClock,
    sessions: SessionFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply answers the member: it is sent uncounted (logged once). A letter is not sent
    uncounted, where it could be the one WeCom drops: it goes back to the outbox for a little
    while."""
    gone = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1.0)
    api = WeComAPI(
        session, App(wecom.corp_id, AGENT, SECRET), base_url=wecom.url, clock=clock, redis=gone
    )
    replies = ReplySender(api)
    for i in range(2):
        await replies.send("zhangsan", [text(f"回复 {i}")])
    assert len(wecom.inbox("zhangsan")) == 2
    assert sum("uncounted" in r.getMessage() for r in caplog.records) == 1

    await _alert(sessions, clock, "zhangsan")
    stats = await Sender({CHANNEL: WeComCourier(api)}, sessions, clock).drain()
    assert (stats.sent, stats.deferred) == (0, 1)
    row = await _letter(sessions)
    assert row.not_before == clock.now() + timedelta(seconds=COUNT_RETRY)
    assert len(wecom.inbox("zhangsan")) == 2
    await gone.aclose()
