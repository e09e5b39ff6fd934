"""Several self-built apps of one corp in one deployment (`WECOM_APPS`), each serving one
organisation, through the real server of `daka wecom` (`bot.wecom.WeComServer`) against the
local WeCom with two apps: each member is answered through the app they wrote to, a reminder
round reaches each member through their organisation's app, each app's callbacks are signed
with its own Token at its own path, and each app journals its own events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.config import Settings
from bot.wecom import WeComServer
from domain.clock import FixedClock
from domain.delivery import Sent
from domain.i18n import create_translator
from handlers.wecom.apps import AppsCourier
from handlers.wecom.inbox import dump_event, journal_key
from handlers.wecom.messages import CHANNEL, TextMessage
from scheduler.couriers import recipients_of
from scheduler.rounds import Rounds
from scheduler.sender import Sender
from storage.db import SessionFactory
from storage.models import CheckIn, InboundEvent, Member
from storage.repo import Repo
from tests.fakewecom import CallbackDriver, LocalWeCom
from tests.handlers.wecom.test_conversation import bind
from tests.handlers.wecom.test_stories import check_in
from tests.handlers.wecom.world import (
    AES_KEY,
    AGENT,
    SECRET,
    TOKEN,
    WeComDaka,
    WeComMember,
    texts,
)

SECOND = 1000003
SECOND_SECRET = "daka-second-app-secret"
SECOND_TOKEN = "dakaSecondToken2026"
SECOND_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY = datetime(2026, 11, 28).date()


@dataclass
class TwoApps:
    """`daka wecom` serving two apps of the local WeCom's corp: the engineering college on
    the first app (`WECOM_*`), the arts college on the second (`WECOM_APPS`)."""

    wecom: LocalWeCom
    server: WeComServer
    base: str
    apps: dict[int, WeComDaka] = field(default_factory=dict)

    def driver(
        self, agent: int, *, path: str | None = None, token: str | None = None
    ) -> CallbackDriver:
        """WeCom posting as `agent` (its Token and key), at its path unless told."""
        first = agent == AGENT
        daka = self.apps[agent]
        return CallbackDriver(
            self.base + (path or ("/wecom" if first else f"/wecom/{agent}")),
            token=token or (TOKEN if first else SECOND_TOKEN),
            aes_key=AES_KEY if first else SECOND_AES_KEY,
            corp_id=self.wecom.corp_id,
            agent_id=agent,
            session=daka.http,
            clock=daka.clock,
            wecom=self.wecom,
        )

    def member(self, userid: str, agent: int) -> WeComMember:
        """Someone writing to the app `agent`."""
        return self.apps[agent].member(userid)


async def create_org(sessions: SessionFactory, daka: WeComDaka, slug: str, agent: int) -> int:
    org_id = await daka.org(slug, name=slug, served=False)
    async with sessions() as session:
        await Repo(session).channels.configure(org_id=org_id, channel=CHANNEL, app_id=str(agent))
        await session.commit()
    return org_id


@contextlib.asynccontextmanager
async def two_apps(
    clock: FixedClock, database_url: str, engine: AsyncEngine, sessions: SessionFactory
) -> AsyncIterator[TwoApps]:
    async with LocalWeCom(clock=clock) as wecom, aiohttp.ClientSession() as http:
        wecom.add_app(AGENT, SECRET)
        wecom.add_app(SECOND, SECOND_SECRET)
        settings = Settings(
            database_url=database_url,
            wecom_corp_id=wecom.corp_id,
            wecom_agent_id=AGENT,
            wecom_secret=SecretStr(SECRET),
            wecom_token=SecretStr(TOKEN),
            wecom_aes_key=SecretStr(AES_KEY),
            wecom_api_url=wecom.url,
            wecom_apps=[
                {
                    "agent_id": SECOND,
                    "secret": SECOND_SECRET,
                    "token": SECOND_TOKEN,
                    "aes_key": SECOND_AES_KEY,
                }
            ],
            _env_file=None,
        )
        first = WeComDaka(wecom, clock, settings, sessions, http)
        second = WeComDaka(wecom, clock, settings, sessions, http, org_ids=first.org_ids)
        await create_org(sessions, first, "engineering", AGENT)
        await create_org(sessions, second, "arts", SECOND)
        server = await WeComServer.build(settings, engine, sessions, clock, http)
        await server.open()
        port = await server.listen("127.0.0.1", 0)
        world = TwoApps(wecom, server, f"http://127.0.0.1:{port}", {AGENT: first, SECOND: second})
        for daka, channel in zip((first, second), server.channels, strict=True):
            daka.channel = channel
            daka.driver = world.driver(channel.settings.agent_id)
        try:
            yield world
        finally:
            for daka in (first, second):
                daka.channel = None  # the server closes them
            await server.close()
        assert wecom.problems == []


@pytest.fixture
async def world(
    clock: FixedClock, database_url: str, engine: AsyncEngine, sessions: SessionFactory
) -> AsyncIterator[TwoApps]:
    async with two_apps(clock, database_url, engine, sessions) as running:
        yield running


def agents(world: TwoApps, userid: str) -> set[int]:
    """The apps that messaged `userid`."""
    return {delivered.agent_id for delivered in world.wecom.inbox(userid)}


async def test_each_member_is_answered_and_reminded_through_their_organisations_app(
    world: TwoApps,
) -> None:
    assert world.server.slugs == ["engineering", "arts"]
    zhangsan = world.member("zhangsan", AGENT)
    wangwu = world.member("wangwu", SECOND)
    await bind(zhangsan, await world.apps[AGENT].invite("engineering"), "2024001", "张三")
    await bind(wangwu, await world.apps[SECOND].invite("arts"), "2024003", "王五")
    assert agents(world, "zhangsan") == {AGENT} and agents(world, "wangwu") == {SECOND}

    courier = world.server.courier()
    assert isinstance(courier, AppsCourier)
    daka = world.apps[AGENT]
    rounds = Rounds(daka.sessions, daka.clock, create_translator(), frozenset({CHANNEL}))
    sender = Sender({CHANNEL: courier}, daka.sessions, daka.clock)
    daka.clock.set(datetime.combine(SATURDAY, time(10, 0), tzinfo=SHANGHAI))
    assert sum(r.enqueued for r in await rounds.tick()) == 2
    assert (await sender.drain()).sent == 2

    for member, agent, name in ((zhangsan, AGENT, "张三"), (wangwu, SECOND, "王五")):
        [reminder] = [d for d in world.wecom.inbox(member.userid) if "还没有打卡" in d.text]
        assert reminder.agent_id == agent and name in reminder.text
        started = await member.taps("✅ 立即打卡")  # the press comes back to that app
        assert "请发送您当前所在的位置" in texts(started)
    for member in (zhangsan, wangwu):
        done = await check_in(member)
        assert "打卡成功" in texts(done)
    assert agents(world, "zhangsan") == {AGENT} and agents(world, "wangwu") == {SECOND}

    async with daka.sessions() as session:
        stored = (await session.exec(select(CheckIn, Member).join(Member))).all()
        journals = set((await session.exec(select(InboundEvent.channel))).all())
    orgs = daka.org_ids
    assert sorted((m.external_id, c.org_id) for c, m in stored) == [
        ("2024001", orgs["engineering"]),
        ("2024003", orgs["arts"]),
    ]
    assert journals == {CHANNEL, f"{CHANNEL}:{SECOND}"}  # each app resumes its own


async def test_an_invite_of_the_organisation_another_app_serves_is_refused(
    world: TwoApps,
) -> None:
    wangwu = world.member("wangwu", SECOND)
    code = await world.apps[AGENT].invite("engineering")

    refused = await wangwu.says(f"绑定 {code}")

    assert "该邀请属于另一个组织，本应用不为其服务" in texts(refused)
    assert agents(world, "wangwu") == {SECOND}


async def test_a_callback_is_taken_only_with_its_own_apps_token_at_its_own_path(
    world: TwoApps,
) -> None:
    world.wecom.add_members("zhangsan")
    # App 1's Token and key at app 2's path: not WeCom's callback for app 2.
    wrong = world.driver(AGENT, path=f"/wecom/{SECOND}")
    status, _, _ = await wrong.verify_url()
    assert status == 403
    push = await wrong.send_text("zhangsan", "你好")
    assert not push.acknowledged and set(push.statuses) == {403}
    # App 1 answers at WECOM_PATH and at WECOM_PATH/<its agent id>; app 2 at its own path.
    for driver in (
        world.driver(AGENT, path=f"/wecom/{AGENT}"),
        world.driver(SECOND),
    ):
        status, body, expected = await driver.verify_url()
        assert (status, body) == (200, expected)
    await world.apps[AGENT].settled()
    assert world.wecom.inbox("zhangsan") == []
    # WeCom's three tries and the GET, each refused by app 2's endpoint, none seen by app 1's.
    assert [channel.endpoint.refused for channel in world.server.channels] == [0, 4]


async def test_someone_in_both_organisations_checks_in_for_the_one_of_the_app_they_write_to(
    world: TwoApps,
) -> None:
    on_first = world.member("lisi", AGENT)
    await bind(on_first, await world.apps[AGENT].invite("engineering"), "2024002", "李四")
    on_second = WeComMember(world.apps[SECOND], "lisi")
    await bind(on_second, await world.apps[SECOND].invite("arts"), "2024002", "李四")

    done = await check_in(on_second)

    assert "打卡成功" in texts(done)
    async with world.apps[AGENT].sessions() as session:
        [(checkin, member)] = (await session.exec(select(CheckIn, Member).join(Member))).all()
    assert checkin.org_id == world.apps[AGENT].org_ids["arts"] and member.external_id == "2024002"
    sent = world.wecom.inbox("lisi")
    assert {d.agent_id for d in sent[-3:]} == {SECOND}


async def test_a_letter_of_an_organisation_whose_app_has_no_settings_here_is_refused(
    world: TwoApps,
) -> None:
    courier = world.server.courier()
    assert isinstance(courier, AppsCourier)

    world.wecom.add_members("zhangsan")
    async with world.apps[AGENT].sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.create(
            slug="elsewhere",
            name="elsewhere",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=world.apps[AGENT].clock.now(),
        )
        none = await repo.orgs.create(
            slug="none",
            name="none",
            timezone="Asia/Shanghai",
            language="zh",
            form="health",
            now=world.apps[AGENT].clock.now(),
        )
        await repo.channels.configure(org_id=org.id or 0, channel=CHANNEL, app_id="1000009")
        await session.commit()
    assert org.id is not None and none.id is not None

    refused = await courier.deliver(TestLetter(org.id, "zhangsan"))
    assert "1000009" in str(refused) and not isinstance(refused, Sent)
    # An organisation no app serves is reached through the first app, as with one app.
    assert isinstance(await courier.deliver(TestLetter(none.id, "zhangsan")), Sent)
    assert agents(world, "zhangsan") == {AGENT}


async def test_after_a_restart_each_app_handles_its_own_journaled_events_through_itself(
    world: TwoApps,
) -> None:
    world.wecom.add_members("wangwu")
    # An event app 2 took (journaled, acknowledged) before a crash, never handled.
    event = TextMessage(
        "wangwu", SECOND, int(world.apps[SECOND].clock.now().timestamp()), "你好", "m1"
    )
    async with world.apps[SECOND].sessions() as session:
        await Repo(session).inbox.journal(
            channel=f"{CHANNEL}:{SECOND}",
            key=journal_key(event),
            sender="wangwu",
            payload=dump_event(event),
            now=world.apps[SECOND].clock.now(),
        )
        await session.commit()

    resumed = [await channel.inbox.start() for channel in world.server.channels]
    for daka in world.apps.values():
        await daka.settled()

    assert resumed == [0, 1]
    [hint] = world.wecom.inbox("wangwu")
    assert hint.agent_id == SECOND and "绑定" in hint.text


async def test_an_organisation_given_another_app_is_reached_through_it_within_a_minute(
    world: TwoApps,
) -> None:
    built = world.server.courier()
    assert isinstance(built, AppsCourier)
    # The sender keeps a member's letters within every app's count, replies included.
    assert recipients_of(built) is built.recipients
    assert built.recipients.parts == tuple(c.api.recipients for c in built.couriers.values())
    sessions, orgs = world.apps[AGENT].sessions, world.apps[AGENT].org_ids
    now = [0.0]

    async def serving() -> dict[int, str]:
        async with sessions() as session:
            return await Repo(session).channels.apps(channel=CHANNEL)

    courier = AppsCourier(built.couriers, first=AGENT, serving=serving, monotonic=lambda: now[0])
    world.wecom.add_members("wangwu")
    letter = TestLetter(orgs["arts"], "wangwu")
    assert isinstance(await courier.deliver(letter), Sent)
    async with sessions() as session:
        repo = Repo(session)
        await repo.channels.configure(org_id=orgs["engineering"], channel=CHANNEL, app_id=None)
        await repo.channels.configure(org_id=orgs["arts"], channel=CHANNEL, app_id=str(AGENT))
        await session.commit()

    now[0] = 30.0
    assert isinstance(await courier.deliver(letter), Sent)  # what it knew a moment ago
    now[0] = 61.0
    assert isinstance(await courier.deliver(letter), Sent)

    assert [d.agent_id for d in world.wecom.inbox("wangwu")] == [SECOND, SECOND, AGENT]


@dataclass
class TestLetter:
    org_id: int
    address: str
    text: str = "你好"
    options: list[list[dict[str, str]]] | None = None

    __test__ = False  # not a test class, for pytest
