"""One organisation, members and managers on two channels: reminders, alerts, nudges, missing
lists and the daily report reach each person on every channel they use (and the deployment
has a courier for), in their language; the figures are the same whichever channel a member
checked in on.

Telegram is the fake Bot API; the second channel ("wecom") is an in-process courier
(`tests.scheduler.couriers`), and its members check in through the conversation core, as
the WeCom adapter hands them over."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from sqlmodel import col, select

from bot.app import channels_of
from domain.conversation import checkin
from domain.conversation.drafts import ANSWERING, SUMMARY
from domain.conversation.io import (
    CollectingOut,
    Command,
    Input,
    Location,
    MemoryState,
    Person,
    Press,
    Said,
    Text,
)
from domain.conversation.turn import Turn, load_visitors
from domain.delivery import TELEGRAM, Pace
from domain.geo import Place
from domain.i18n import speaking
from scheduler.rounds import Rounds
from scheduler.sender import Sender
from storage.models import Account, Identity, Outbox
from storage.repo import Repo
from tests.fakebot import FakeUser
from tests.scheduler.conftest import School
from tests.scheduler.couriers import RecordingCourier
from tests.scheduler.test_reminders import check_in, reminders

WECOM = "wecom"
WECOM_APP = Pace(rate_per_second=200, per_recipient_per_minute=30, per_recipient_per_hour=1000)
REMINDER_ZH = "还没有打卡"
REMINDER_EN = "you have not checked in today"
ALERT = "异常打卡"
REPORT = "日报"
MISSING = "截止时仍未打卡"
CLASS_1 = 101  # the Telegram id of 工程学院/一班's counselor
COLLEGE = 102  # of 工程学院's manager, who is "boss" on WeCom too


async def no_files(ref: str) -> bytes:
    """No photo answered in these tests: nothing to fetch."""
    raise LookupError(ref)


@dataclass
class TwoChannels:
    """The school of `tests.scheduler.conftest`, served on Telegram and on WeCom."""

    school: School
    wecom: RecordingCourier

    async def at(self, hhmm: str) -> int:
        """Run the rounds due at HH:MM; how many letters they wrote."""
        return sum(r.enqueued for r in await self.school.at(hhmm))

    async def send(self) -> None:
        await self.school.send()

    async def on_wecom(self, external_id: str, userid: str, language: str | None = None) -> None:
        """Member `external_id` writes from WeCom as `userid` too (enrolled there if they had
        no account yet), choosing `language`."""
        daka = self.school.daka
        async with daka.sessions() as session:
            repo = Repo(session)
            member = await repo.members.by_external(
                org_id=daka.org_ids["school"], external_id=external_id
            )
            assert member is not None
            if member.account_id is None:
                account = await repo.accounts.ensure(
                    channel=WECOM, external_id=userid, now=daka.clock.now()
                )
                assert account.id is not None
                await repo.members.bind(member=member, account_id=account.id, now=daka.clock.now())
            else:
                session.add(
                    Identity(
                        channel=WECOM,
                        external_id=userid,
                        account_id=member.account_id,
                        created_at=daka.clock.now(),
                    )
                )
            if language is not None:
                found = await session.get(Account, member.account_id)
                assert found is not None
                found.language = language
                session.add(found)
            await session.commit()

    async def manager_on_wecom(self, telegram_id: int, userid: str) -> None:
        """The manager known on Telegram as `telegram_id` is `userid` on WeCom too."""
        daka = self.school.daka
        async with daka.sessions() as session:
            repo = Repo(session)
            account = await repo.accounts.by_identity(
                channel=TELEGRAM, external_id=str(telegram_id)
            )
            assert account is not None and account.id is not None
            session.add(
                Identity(
                    channel=WECOM,
                    external_id=userid,
                    account_id=account.id,
                    created_at=daka.clock.now(),
                )
            )
            await session.commit()

    async def wecom_manager(self, userid: str, unit: str) -> None:
        """A manager of `unit` known only on WeCom, as `userid`."""
        daka = self.school.daka
        org_id = daka.org_ids["school"]
        async with daka.sessions() as session:
            repo = Repo(session)
            account = await repo.accounts.ensure(
                channel=WECOM, external_id=userid, now=daka.clock.now()
            )
            assert account.id is not None
            managed = await repo.units.require(org_id=org_id, name_path=unit)
            await repo.roles.grant(
                org_id=org_id,
                account_id=account.id,
                unit_id=managed.id,
                role="manager",
                now=daka.clock.now(),
            )
            await session.commit()

    def on_telegram(self, telegram_id: int, needle: str) -> list[str]:
        return [m.text for m in self.school.server.messages(telegram_id) if needle in m.text]

    def on_wecom_app(self, userid: str, needle: str) -> list[str]:
        return [t for t in self.wecom.delivered(userid) if needle in t]

    async def letters(self) -> list[tuple[str, str, str]]:
        """(channel, address, kind) of every letter written, in order."""
        async with self.school.daka.sessions() as session:
            rows = await session.exec(select(Outbox).order_by(col(Outbox.id)))
            return [(x.channel, x.address, x.kind) for x in rows.all()]


@pytest.fixture
def both(school: School) -> TwoChannels:
    """A deployment with a Telegram courier and a WeCom one: its rounds, its sender, and the
    Telegram adapter's turns all know both channels."""
    assert school.daka.dp is not None
    wecom = RecordingCourier(WECOM, WECOM_APP)
    couriers = {**school.sender.couriers, WECOM: wecom}
    school.rounds = Rounds(
        school.daka.sessions, school.clock, school.rounds.i18n, channels_of(couriers)
    )
    school.sender = Sender(couriers, school.daka.sessions, school.clock)
    school.daka.dp["channels"] = channels_of(couriers)
    return TwoChannels(school, wecom)


def places(lat: float, lon: float) -> Place | None:
    return Place("CN", "中国", "北京市", "北京市")


@dataclass
class WeComMember:
    """A member talking to the conversation core from WeCom, as its adapter would hand them
    over: one turn per message, committed, in a deployment serving both channels."""

    both: TwoChannels
    userid: str
    state: MemoryState = field(default_factory=MemoryState)
    out: CollectingOut = field(default_factory=CollectingOut)

    async def send(self, given: Input) -> Said:
        daka = self.both.school.daka
        async with daka.sessions() as session:
            repo = Repo(session)
            visitors = await load_visitors(repo, channel=WECOM, external_ids=[self.userid])
            turn = Turn(
                Person(WECOM, self.userid, "zh"),
                visitors[self.userid],
                repo,
                daka.clock,
                self.state,
                self.out,
                channels=channels_of(self.both.school.sender.couriers),
            )
            state = await self.state.get_state()
            with speaking("zh"):
                if state is None:
                    await checkin.on_start(turn, given, resolve=places)
                elif state == ANSWERING:
                    await checkin.on_answer(turn, given, resolve=places, fetch=no_files)
                else:
                    assert state == SUMMARY
                    await checkin.on_summary(turn, given, resolve=places)
            await session.commit()
        return self.out.take()[-1]

    async def press(self, said: Said, label: str) -> Said:
        [key] = [o.key for row in said.options for o in row if label in o.label and o.key]
        return await self.send(Press(key))

    async def check_in(self, temperature: str = "36.5") -> None:
        await self.send(Command("checkin"))
        await self.send(Location(39.9087, 116.3975, accuracy=12.5))
        question = await self.send(Text(temperature))
        await self.press(question, "以上都没有")
        question = await self.press(question, "完成")
        question = await self.press(question, "否")
        summary = await self.press(question, "跳过")
        done = await self.press(summary, "确认提交")
        assert "打卡成功" in done.text


async def test_each_member_is_reminded_on_each_channel_they_use_in_their_language(
    both: TwoChannels,
) -> None:
    await both.school.enrol(11, "1001")
    await both.on_wecom("1001", "zhangsan")  # 张三: Telegram and WeCom
    await both.on_wecom("1002", "lisi", language="en")  # 李四: WeCom only, in English
    await both.school.enrol(13, "1003")  # 王五: Telegram only
    assert await both.at("08:00") == 4
    await both.send()
    assert len(reminders(both.school, 11)) == 1 and len(reminders(both.school, 13)) == 1
    [zhangsan] = both.on_wecom_app("zhangsan", REMINDER_ZH)
    assert "张三" in zhangsan
    [lisi] = both.on_wecom_app("lisi", REMINDER_EN)
    assert "李四" in lisi
    assert both.wecom.delivered() == [zhangsan, lisi]


async def test_a_check_in_on_one_channel_spares_the_reminder_waiting_on_the_other(
    both: TwoChannels,
) -> None:
    await both.school.enrol(11, "1001")
    await both.on_wecom("1001", "zhangsan")
    assert await both.at("08:00") == 2
    await WeComMember(both, "zhangsan").check_in()
    await both.send()
    assert both.school.sender.stats.skipped == 2
    assert reminders(both.school, 11) == [] and both.wecom.delivered() == []


async def test_the_daily_report_counts_members_whichever_channel_they_checked_in_on(
    both: TwoChannels,
) -> None:
    await both.school.enrol(11, "1001")  # 张三 checks in on Telegram
    await both.on_wecom("1002", "lisi")  # 李四 on WeCom
    await both.school.enrol(13, "1003")  # 王五 does not check in
    await both.school.grant(COLLEGE, "工程学院")
    await both.manager_on_wecom(COLLEGE, "boss")
    await check_in(both.school, both.school.server.user(11), temperature="37.8")
    await WeComMember(both, "lisi").check_in(temperature="37.9")
    await both.send()

    # Each abnormal check-in reaches the manager on both channels, whichever it came from.
    for name in ("张三", "李四"):
        assert len([t for t in both.on_telegram(COLLEGE, ALERT) if name in t]) == 1
        assert len([t for t in both.on_wecom_app("boss", ALERT) if name in t]) == 1

    assert await both.at("15:00") == 2  # the report, once on each channel
    await both.send()
    [on_telegram] = both.on_telegram(COLLEGE, REPORT)
    [on_wecom] = both.on_wecom_app("boss", REPORT)
    for report in (on_telegram, on_wecom):
        assert "工程学院：应报 3，已报 2（67%），未报 1，异常 2" in report
        assert "• 一班：应报 3，已报 2（67%），未报 1，异常 2" in report
        assert "• 张三 (工程学院/一班): 体温" in report
        assert "• 李四 (工程学院/一班): 体温" in report


async def test_the_missing_list_and_a_nudge_reach_a_member_known_only_on_wecom(
    both: TwoChannels,
) -> None:
    await both.on_wecom("1002", "lisi")
    await both.school.grant(CLASS_1, "工程学院/一班")
    await both.manager_on_wecom(CLASS_1, "counselor")
    counselor: FakeUser = both.school.server.user(CLASS_1)
    missing = await counselor.ask("/missing")
    assert "李四" in missing.text and "联系不上" not in missing.text
    counselor.press_button(missing, "提醒 李四")
    answer = await counselor.next_callback_answer()
    while not answer.text:
        answer = await counselor.next_callback_answer()
    assert "已提醒" in answer.text
    await both.school.daka.settled()
    assert await both.letters() == [(WECOM, "lisi", "remind")]
    await both.send()
    assert len(both.on_wecom_app("lisi", REMINDER_ZH)) == 1

    assert await both.at("14:00") == 2  # the cutoff list, on each of the counselor's channels
    await both.send()
    [on_telegram] = both.on_telegram(CLASS_1, MISSING)
    [on_wecom] = both.on_wecom_app("counselor", MISSING)
    for listing in (on_telegram, on_wecom):
        assert "李四" in listing and "联系不上" not in listing


async def test_blocked_on_telegram_is_still_reached_on_wecom(both: TwoChannels) -> None:
    await both.school.enrol(11, "1001")
    await both.on_wecom("1001", "zhangsan")  # 张三 on both, blocks the bot
    await both.school.enrol(13, "1003")  # 王五 on Telegram only, blocks it too
    both.school.server.block(11)
    both.school.server.block(13)
    assert await both.at("08:00") == 3
    await both.send()
    assert both.school.sender.stats.blocked == 2
    assert len(both.on_wecom_app("zhangsan", REMINDER_ZH)) == 1
    assert (await both.school.daka.member("1001")).unreachable_since is None
    assert (await both.school.daka.member("1003")).unreachable_since is not None
    # The next round still writes to 张三 (on both), no longer to 王五.
    assert await both.at("10:00") == 2
    await both.send()
    assert len(both.on_wecom_app("zhangsan", REMINDER_ZH)) == 2


async def test_no_letter_is_written_for_a_channel_the_deployment_has_no_courier_for(
    school: School,
) -> None:
    """Telegram only: a member and a manager known only on WeCom get nothing (a letter for
    WeCom would wait in the outbox for ever)."""
    telegram_only = TwoChannels(school, RecordingCourier(WECOM, WECOM_APP))  # not the sender's
    await school.enrol(11, "1001")
    await telegram_only.on_wecom("1002", "lisi")
    await telegram_only.wecom_manager("boss", "工程学院")
    assert await telegram_only.at("08:00") == 1  # 张三's, on Telegram
    assert await telegram_only.at("14:00") == 0
    assert await telegram_only.letters() == [(TELEGRAM, "11", "remind")]
