"""Daka serving a WeCom app over real HTTP: the real callback endpoint, journal, lanes, core
and replies (`bot.wecom.build_channel`) on a SQLite file or PostgreSQL, against the local WeCom
(`tests/fakewecom`) and its callback driver, on the tests' hand-moved clock; and the people who
write to it, as WeCom members do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from datetime import timedelta

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from bot.config import Settings
from bot.wecom import WeComChannel, build_channel
from domain.clock import FixedClock
from handlers.wecom.messages import CHANNEL
from handlers.wecom.turns import Converse, StateOf
from storage.db import SessionFactory
from storage.repo import Repo, RosterRow
from tests.fakewecom import CallbackDriver, Delivered, LocalWeCom, Push

AGENT = 1000002
SECRET = "daka-app-secret-0123456789"
TOKEN = "dakaWeComToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ROSTER = [
    ("工程学院/一班", "2024001", "张三"),
    ("工程学院/一班", "2024002", "李四"),
    ("工程学院/二班", "2024003", "王五"),
    ("工程学院/二班", "ZhaoLiu", "赵六"),
]


@dataclass
class Said:
    """A message as the member sees it now: its text (a card: title and text beneath), its
    buttons, and whether it is a card changed in place (rather than a new message)."""

    text: str
    buttons: list[str] = field(default_factory=list)
    task: str = ""
    updated: bool = False
    msgtype: str = "text"
    choices: list[str] = field(default_factory=list)  # a vote card's options ("☑" ticked)


def shown(delivered: Delivered) -> Said:
    """A delivered message as it stands now (a card: as its last update left it)."""
    if delivered.msgtype != "template_card":
        return Said(delivered.text, msgtype=delivered.msgtype)
    card = delivered.card
    body = card.body if card is not None else delivered.body
    title = body.get("main_title", {}).get("title", "")
    desc = body.get("main_title", {}).get("desc", "")
    text = "\n".join(t for t in (title, desc, body.get("sub_title_text", "")) if t)
    buttons = [str(b.get("text")) for b in body.get("button_list", [])]
    choices: list[str] = []
    if body.get("card_type") == "vote_interaction":
        options = body.get("checkbox", {}).get("option_list", [])
        choices = [("☑ " if o.get("is_checked") else "") + str(o.get("text")) for o in options]
        buttons = [str(body.get("submit_button", {}).get("text") or "提交")]
    if card is not None and card.replaced_by:
        buttons = [card.replaced_by]
    task = str(body.get("task_id", ""))
    return Said(text, buttons, task, msgtype="template_card", choices=choices)


@dataclass
class WeComDaka:
    """One running app and its world."""

    wecom: LocalWeCom
    clock: FixedClock
    settings: Settings
    sessions: SessionFactory
    http: aiohttp.ClientSession
    channel: WeComChannel | None = None
    runner: web.AppRunner | None = None
    driver: CallbackDriver | None = None
    org_ids: dict[str, int] = field(default_factory=dict)

    async def start(
        self, *, converse: Converse | None = None, state_of: StateOf | None = None
    ) -> None:
        self.channel = build_channel(
            self.settings,
            self.sessions,
            self.clock,
            self.http,
            converse=converse,
            state_of=state_of,
        )
        app = web.Application()
        app.add_routes(self.channel.routes())
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        host, port = self.runner.addresses[0][:2]
        self.driver = CallbackDriver(
            f"http://{host}:{port}{self.settings.wecom_path}",
            token=TOKEN,
            aes_key=AES_KEY,
            corp_id=self.wecom.corp_id,
            agent_id=AGENT,
            session=self.http,
            clock=self.clock,
            wecom=self.wecom,
        )
        await self.channel.inbox.start()
        await self.settled()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.channel is not None:
            await self.channel.endpoint.drain()
            await self.channel.inbox.close()
        self.channel = self.runner = None

    async def crash(self) -> None:
        """The process dies: what it is handling is cut short (its transaction rolls back)."""
        assert self.channel is not None and self.runner is not None
        tasks = self.channel.inbox._tasks()  # the lanes and the writers under way
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.runner.cleanup()
        self.channel = self.runner = None

    async def restart(self, **kwargs: object) -> None:
        await self.stop()
        await self.start(**kwargs)  # type: ignore[arg-type]

    async def settled(self) -> None:
        """Everything acknowledged so far is handled and its replies are sent."""
        assert self.channel is not None
        await asyncio.wait_for(self.channel.inbox.idle(), timeout=60)

    async def org(
        self,
        slug: str = "school",
        *,
        name: str = "第一中学",
        language: str = "zh",
        served: bool = True,
        ids_are_member_ids: bool = False,
        text_only: bool = False,
    ) -> int:
        async with self.sessions() as session:
            repo = Repo(session)
            org = await repo.orgs.create(
                slug=slug,
                name=name,
                timezone="Asia/Shanghai",
                language=language,
                form="health",
                now=self.clock.now(),
            )
            assert org.id is not None
            rows = [
                RosterRow(line=i, unit=u, member_id=m, name=n)
                for i, (u, m, n) in enumerate(ROSTER, start=2)
            ]
            await repo.members.import_roster(org_id=org.id, rows=rows)
            if served:
                await repo.channels.configure(
                    org_id=org.id,
                    channel=CHANNEL,
                    app_id=str(AGENT),
                    ids_are_member_ids=ids_are_member_ids,
                    text_only=text_only,
                )
            await session.commit()
        self.org_ids[slug] = org.id
        return org.id

    async def invite(self, slug: str = "school", *, role: str = "member") -> str:
        async with self.sessions() as session:
            invite = await Repo(session).invites.create(
                org_id=self.org_ids[slug],
                unit_id=None,
                role=role,
                expires_at=self.clock.now() + timedelta(days=7),
                max_uses=None,
                now=self.clock.now(),
            )
            await session.commit()
            return invite.code

    async def grant_manager(self, userid: str, slug: str = "school") -> None:
        """A manager of the whole organisation, known by their WeCom userid."""
        async with self.sessions() as session:
            repo = Repo(session)
            account = await repo.accounts.ensure(
                channel=CHANNEL, external_id=userid, now=self.clock.now()
            )
            await repo.roles.grant(
                org_id=self.org_ids[slug],
                account_id=account.id or 0,
                unit_id=None,
                role="manager",
                now=self.clock.now(),
            )
            await session.commit()

    def member(self, userid: str) -> WeComMember:
        self.wecom.add_members(userid)
        return WeComMember(self, userid)


class WeComMember:
    """Someone in the app's visible range, writing to it from the WeCom client (or WeChat)."""

    def __init__(self, daka: WeComDaka, userid: str) -> None:
        self.daka = daka
        self.userid = userid
        self._seen = 0

    @property
    def driver(self) -> CallbackDriver:
        assert self.daka.driver is not None
        return self.daka.driver

    async def says(self, text: str) -> list[Said]:
        return await self._act(self.driver.send_text(self.userid, text))

    async def sends_location(
        self, latitude: float, longitude: float, label: str = ""
    ) -> list[Said]:
        return await self._act(self.driver.send_location(self.userid, latitude, longitude, label))

    async def picks_location(
        self, latitude: float, longitude: float, label: str = "北京市东城区"
    ) -> list[Said]:
        """The menu's 打卡 button: WeCom's location picker, then the pick."""
        return await self._act(self.driver.pick_location(self.userid, latitude, longitude, label))

    async def sends_image(self, media_id: str) -> list[Said]:
        """An image message: the MediaId WeCom keeps the picture under (`put_media`)."""
        return await self._act(self.driver.send_image(self.userid, media_id))

    async def reports_location(self, latitude: float, longitude: float) -> list[Said]:
        return await self._act(self.driver.report_location(self.userid, latitude, longitude))

    async def clicks_menu(self, key: str) -> list[Said]:
        return await self._act(self.driver.click(self.userid, key))

    async def taps(self, label: str) -> list[Said]:
        """The newest card button labelled `label` (as the card stands now)."""
        for delivered in reversed(self.daka.wecom.inbox(self.userid)):
            now = shown(delivered)
            if delivered.card is not None and label in now.buttons:
                keys = [str(b.get("key")) for b in delivered.card.body.get("button_list", [])]
                key = keys[now.buttons.index(label)]
                return await self.presses(delivered.card.task_id, key)
        raise AssertionError(f"no card button {label!r} for {self.userid}: {self.screen()}")

    async def ticks(self, *labels: str) -> list[Said]:
        """On the newest vote card still open: tick the options labelled `labels` (none:
        tick nothing) and tap its submit button."""
        for delivered in reversed(self.daka.wecom.inbox(self.userid)):
            card = delivered.card
            if card is None or card.replaced_by or card.body["card_type"] != "vote_interaction":
                continue
            options = card.body["checkbox"]["option_list"]
            ids = {str(o["text"]): str(o["id"]) for o in options}
            missing = [label for label in labels if label not in ids]
            if missing:
                raise AssertionError(f"no option {missing[0]!r} on {self.userid}'s vote card")
            chosen = [ids[label] for label in labels]
            return await self._act(self.driver.submit(self.userid, card.task_id, chosen))
        raise AssertionError(f"no open vote card for {self.userid}: {self.screen()}")

    async def presses(self, task_id: str, key: str) -> list[Said]:
        return await self._act(self.driver.press(self.userid, task_id, key))

    def screen(self) -> list[Said]:
        """Every message the member got, as it stands now."""
        return [shown(d) for d in self.daka.wecom.inbox(self.userid)]

    def last_card(self) -> Said:
        return next(s for s in reversed(self.screen()) if s.msgtype == "template_card")

    async def _act(self, push: Awaitable[Push]) -> list[Said]:
        """What the member sees change: new messages, and cards changed in place."""
        before = self.daka.wecom.inbox(self.userid)
        updates = {d.card.task_id: len(d.card.updates) for d in before if d.card is not None}
        done = await push
        assert done.acknowledged, done.statuses
        await self.daka.settled()
        after = self.daka.wecom.inbox(self.userid)
        changed = [
            Said(**{**shown(d).__dict__, "updated": True})
            for d in before
            if d.card is not None and len(d.card.updates) > updates.get(d.card.task_id, 0)
        ]
        return changed + [shown(d) for d in after[len(before) :]]


def texts(said: list[Said]) -> str:
    return "\n---\n".join(s.text for s in said)


@contextlib.asynccontextmanager
async def running_wecom(
    clock: FixedClock, database_url: str, sessions: SessionFactory
) -> AsyncIterator[WeComDaka]:
    async with LocalWeCom(clock=clock) as wecom, aiohttp.ClientSession() as http:
        wecom.add_app(AGENT, SECRET)
        settings = Settings(
            database_url=database_url,
            wecom_corp_id=wecom.corp_id,
            wecom_agent_id=AGENT,
            wecom_secret=SecretStr(SECRET),
            wecom_token=SecretStr(TOKEN),
            wecom_aes_key=SecretStr(AES_KEY),
            wecom_api_url=wecom.url,
            _env_file=None,
        )
        daka = WeComDaka(wecom, clock, settings, sessions, http)
        try:
            yield daka
        finally:
            with contextlib.suppress(Exception):
                await daka.stop()
        assert wecom.problems == []
