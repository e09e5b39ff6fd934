"""The check-in dialogue driven directly: neutral inputs in, what it says collected, a real
SQLite database (copied from one seeded per module) underneath. No HTTP, no aiogram."""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import FixedClock
from domain.conversation import checkin, common, photos
from domain.conversation.drafts import (
    ANSWERING,
    SKIP,
    SUMMARY,
    AnswerKey,
    Draft,
    StartCheckInKey,
    SummaryKey,
)
from domain.conversation.io import (
    Ask,
    CollectingOut,
    Command,
    Document,
    Input,
    Location,
    MemoryState,
    Person,
    Photo,
    Press,
    Said,
    Text,
)
from domain.conversation.turn import Turn, Visitor
from domain.delivery import TELEGRAM
from domain.forms import Form, parse_form
from domain.geo import Place
from domain.i18n import speaking
from domain.kinds.photo import MAX_PHOTO_BYTES
from storage.db import create_engine, create_session_factory
from storage.models import CheckIn, Identity, Member, Organisation, Outbox
from storage.models import Photo as PhotoRow
from storage.repo import Repo
from tests.conftest import MORNING
from tests.storage.seeding import migrated_session, seed_roster, telegram_account

TIANANMEN = (39.9087, 116.3975)
JPEG = b"\xff\xd8\xff\xe0 a photo"
SHENZHEN = (22.5431, 114.0579)
MANAGER = 900
ROSTER = (("工程学院/一班", "1", "甲"), ("工程学院/一班", "2", "乙"))


def places(lat: float, lon: float) -> Place | None:
    """Beijing north of 30°, Shenzhen south of it (the real resolver loads a table)."""
    if lat > 30:
        return Place("CN", "中国", "北京市", "北京市")
    return Place("CN", "中国", "广东省", "深圳市")


async def build_world(url: str) -> None:
    async with migrated_session(url) as session:
        repo = Repo(session)
        org, _members = await seed_roster(
            repo, name="S", roster=ROSTER, enrolled={"1": MORNING, "2": MORNING}, now=MORNING
        )
        assert org.id is not None
        await repo.roles.grant(
            org_id=org.id,
            account_id=await telegram_account(repo, MANAGER, MORNING),
            unit_id=None,
            role="manager",
            now=MORNING,
        )
        await session.commit()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checkin") / "world.db"
    asyncio.run(build_world(f"sqlite+aiosqlite:///{path}"))
    return path


@dataclass
class Chat:
    """One member talking to the dialogue the way an adapter routes them: by state."""

    session: AsyncSession
    visitor: Visitor
    clock: FixedClock
    state: MemoryState = field(default_factory=MemoryState)
    out: CollectingOut = field(default_factory=CollectingOut)
    woken: int = 0
    recorded: int = 0
    update_id: int = 1000
    channels: frozenset[str] = frozenset({TELEGRAM})  # the deployment's
    files: dict[str, bytes] = field(default_factory=dict)  # the channel's photos, by reference

    @property
    def org(self) -> Organisation:
        assert self.visitor.org is not None
        return self.visitor.org

    def wake(self) -> None:
        self.woken += 1

    def note(self) -> None:
        self.recorded += 1

    async def send(self, given: Input) -> list[Said]:
        """One update: routed by state as domain.conversation.dispatch does, then committed."""
        self.update_id += 1
        person = Person("test", str(self.visitor.telegram_id), "zh")
        turn = Turn(
            person,
            self.visitor,
            Repo(self.session),
            self.clock,
            self.state,
            self.out,
            self.update_id,
            self.channels,
        )
        state = await self.state.get_state()
        if state is None:
            await checkin.on_start(turn, given, resolve=places)
        elif state == ANSWERING:
            await checkin.on_answer(turn, given, resolve=places, fetch=self.fetch)
        else:
            assert state == SUMMARY
            await checkin.on_summary(
                turn, given, resolve=places, wake=self.wake, recorded=self.note
            )
        await self.session.commit()
        return self.out.take()

    async def fetch(self, ref: str) -> bytes:
        """The channel's download: a reference it no longer has is a LookupError."""
        if ref not in self.files:
            raise LookupError(ref)
        return self.files[ref]

    async def press(self, said: Said, label: str) -> list[Said]:
        """Press the option whose label contains `label`."""
        [key] = [o.key for row in said.options for o in row if label in o.label and o.key]
        return await self.send(Press(key))

    @property
    def draft(self) -> Draft:
        return Draft(self.state.data)

    async def stored(self) -> list[CheckIn]:
        rows = await self.session.exec(select(CheckIn).order_by(col(CheckIn.id)))
        return list(rows.all())


@pytest.fixture
async def chat(template: Path, tmp_path: Path) -> AsyncIterator[Chat]:
    path = tmp_path / "daka.db"
    shutil.copyfile(template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with create_session_factory(engine)() as session:
            org = (await session.exec(select(Organisation))).one()
            member = (await session.exec(select(Member).where(Member.external_id == "1"))).one()
            visitor = Visitor(
                channel="telegram", external_id=str(101), account=None, members=[member], org=org
            )
            yield Chat(session, visitor, FixedClock(MORNING))
    finally:
        await engine.dispose()


def last(said: list[Said]) -> Said:
    """The message of a turn (the last thing said, after any notice)."""
    return said[-1]


async def to_summary(
    chat: Chat,
    *,
    where: tuple[float, float] = TIANANMEN,
    temperature: str = "36.5",
    symptoms: tuple[str, ...] = ("以上都没有",),
    exposure: str | None = None,
) -> Said:
    """Walk the health form from /checkin to the summary; returns the summary."""
    await chat.send(Command("checkin"))
    question = last(await chat.send(Location(*where, accuracy=12.5)))
    question = last(await chat.send(Text(temperature)))
    for option in symptoms:
        await chat.press(question, option)
    question = last(await chat.press(question, "完成"))
    if exposure is None:
        question = last(await chat.press(question, "否"))
    else:
        await chat.press(question, "是")
        question = last(await chat.send(Text(exposure)))
    summary = last(await chat.press(question, "跳过"))
    assert "请核对" in summary.text
    return summary


# -- the whole conversation -------------------------------------------------------------------


async def test_a_healthy_member_checks_in(chat: Chat) -> None:
    [first] = await chat.send(Command("checkin"))
    assert first.how == "say" and first.ask is Ask.LOCATION
    assert first.text.startswith("(1/5) 请发送您当前所在的位置")
    assert chat.state.state == ANSWERING and chat.draft.qid == "location"

    [temperature] = await chat.send(Location(*TIANANMEN, accuracy=12.5))
    assert temperature.text.startswith("📍 已收到位置: 北京市。\n\n(2/5) ")
    assert "请输入 35.0 到 42.0 °C 之间的数字" in temperature.text
    assert temperature.ask is Ask.MENU and chat.draft.data["menu"] is True  # the menu is back

    [symptoms] = await chat.send(Text("３６．５"))
    assert symptoms.how == "say" and symptoms.text.startswith("(3/5) ")
    assert symptoms.labels()[-1] == "完成 ✔" and symptoms.labels()[0] == "⬜ 发热"
    ack, redraw = await chat.press(symptoms, "以上都没有")
    assert (ack.how, ack.text, redraw.how) == ("notice", "", "update_options")
    assert "☑️ 以上都没有" in redraw.labels()

    ack, exposure = await chat.press(redraw, "完成")
    assert exposure.how == "replace"  # the pressed message becomes the next question
    assert exposure.text.startswith("✔ 症状: <b>以上都没有</b>\n\n(4/5) ")
    assert exposure.labels() == ["是", "否"]
    _ack, photo = await chat.press(exposure, "否")
    assert photo.labels() == ["⏭ 跳过"] and "不可转发" in photo.text
    _ack, summary = await chat.press(photo, "跳过")
    assert summary.how == "replace" and chat.state.state == SUMMARY
    assert "36.5 °C" in summary.text and "未填" in summary.text and "⚠️" not in summary.text
    assert summary.labels() == ["✅ 确认提交", "✏️ 修改回答", "❌ 取消"]

    ack, done = await chat.press(summary, "确认提交")
    assert done.how == "replace" and "2026-11-28 打卡成功" in done.text and "正常" in done.text
    assert chat.state.state is None and chat.state.data == {}
    assert (chat.recorded, chat.woken) == (1, 0)
    [stored] = await chat.stored()
    assert stored.local_day == date(2026, 11, 28) and not stored.abnormal
    assert (stored.latitude, stored.longitude, stored.accuracy_m) == (*TIANANMEN, 12.5)
    assert (stored.province, stored.city) == ("北京市", "北京市")
    assert stored.answers == {
        "location": {"lat": TIANANMEN[0], "lon": TIANANMEN[1], "accuracy": 12.5, "live": False},
        "temperature": 36.5,
        "symptoms": ["none"],
        "exposure": {"yes": False, "detail": None},
        "photo": None,
    }
    assert stored.version == 1
    assert (await chat.session.exec(select(Outbox))).all() == []


async def test_an_abnormal_check_in_is_flagged_and_alerts_the_managers(chat: Chat) -> None:
    summary = await to_summary(
        chat, temperature="37.8", symptoms=("发热", "咳嗽"), exposure="途经武汉"
    )
    assert summary.text.count("⚠️") == 3
    assert "是（途经武汉）" in summary.text and "发热、咳嗽" in summary.text
    _ack, done = await chat.press(summary, "确认提交")
    assert "异常" in done.text and "体温、症状、接触史/行程" in done.text
    [stored] = await chat.stored()
    assert stored.abnormal and stored.reasons == ["temperature", "symptoms", "exposure"]
    assert stored.answers["exposure"] == {"yes": True, "detail": "途经武汉"}
    [letter] = (await chat.session.exec(select(Outbox))).all()
    assert (letter.channel, letter.address) == ("telegram", str(MANAGER))
    assert letter.kind == "alert" and "甲" in letter.text
    assert chat.woken == 1


async def test_an_alert_reaches_each_manager_on_every_channel_of_the_deployment(
    chat: Chat,
) -> None:
    """The manager is on Telegram and on WeCom, in English: one alert on each, in English."""
    manager = await Repo(chat.session).accounts.by_identity(
        channel=TELEGRAM, external_id=str(MANAGER)
    )
    assert manager is not None and manager.id is not None
    manager.language = "en"
    chat.session.add(
        Identity(channel="wecom", external_id="boss", account_id=manager.id, created_at=MORNING)
    )
    chat.channels = frozenset({TELEGRAM, "wecom"})
    await chat.press(await to_summary(chat, temperature="37.8"), "确认提交")
    letters = (await chat.session.exec(select(Outbox).order_by(col(Outbox.channel)))).all()
    assert [(x.channel, x.address, x.kind) for x in letters] == [
        (TELEGRAM, str(MANAGER), "alert"),
        ("wecom", "boss", "alert"),
    ]
    assert letters[0].text == letters[1].text and "Abnormal check-in" in letters[0].text


async def test_checking_in_again_says_when_and_amends(chat: Chat) -> None:
    await chat.press(await to_summary(chat), "确认提交")
    chat.clock.advance(timedelta(hours=2))
    [first] = await chat.send(Command("checkin"))
    assert first.text.startswith("您今天已于 09:00 打卡，重新填写将更新今天的记录。\n\n(1/5)")
    chat.state.state, chat.state.data = None, {}
    _ack, done = await chat.press(await to_summary(chat, temperature="36.8"), "确认提交")
    assert "更新" in done.text and "2" in done.text
    [stored] = await chat.stored()
    assert stored.version == 2 and stored.answers["temperature"] == 36.8


async def test_the_start_button_under_a_reminder_starts_it(chat: Chat) -> None:
    ack, first = await chat.send(Press(StartCheckInKey().pack()))
    assert ack.how == "notice" and not ack.alert and first.ask is Ask.LOCATION


async def test_someone_not_enrolled_is_told_so(chat: Chat) -> None:
    chat.visitor = Visitor(channel="telegram", external_id=str(555), account=None)
    [said] = await chat.send(Command("checkin"))
    assert said.text == "您还未加入，请先打开辅导员发给您的邀请链接。" and chat.state.state is None


# -- bad answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "explanation"),
    [
        ("45", "过高"),
        ("34", "过低"),
        ("abc", "不是有效的数字"),
        ("36.55", "小数"),
        ("", "请输入数字"),  # a sticker: no text at all
    ],
)
async def test_a_bad_number_is_explained_and_asked_again(
    chat: Chat, typed: str, explanation: str
) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    [again] = await chat.send(Text(typed))
    assert explanation in again.text and "(2/5) 请输入您今天测量的体温" in again.text
    assert chat.draft.qid == "temperature" and "temperature" not in chat.draft.answers


async def test_bad_answers_are_explained_in_the_members_language(chat: Chat) -> None:
    with speaking("en"):
        [first] = await chat.send(Command("checkin"))
        assert "Please share your current location" in first.text
        [again] = await chat.send(Text("at home"))
        assert again.text.startswith("I need your location") and again.ask is Ask.LOCATION
        [again] = await chat.send(Location(91.0, 0.0))
        assert "not a place on Earth" in again.text
        await chat.send(Location(*TIANANMEN))
        [again] = await chat.send(Text("45"))
        assert again.text.startswith("That is too high. Please send a number from 35.0 to 42.0.")


async def test_wrong_inputs_for_a_location(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    wrong: list[tuple[Input, str]] = [
        (Text("我在家"), "需要获取您的位置"),
        (Photo("p1"), "需要获取您的位置"),
        (Document("d1", "a.pdf"), "需要获取您的位置"),
        (Location(*TIANANMEN, forwarded=True), "转发"),
        (Location(1e9, -1e300), "位置不可能存在"),
        (Command("today"), "/cancel"),
    ]
    for given, expected in wrong:
        [again] = await chat.send(given)
        assert expected in again.text and "请发送您当前所在的位置" in again.text, given
        assert again.ask is Ask.LOCATION
    [received] = await chat.send(Location(*SHENZHEN, live=True))
    assert "广东省 深圳市" in received.text
    assert chat.draft.answers["location"]["live"] is True


async def test_typing_where_buttons_are_due_and_done_with_nothing(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    [symptoms] = await chat.send(Text("36.4"))
    [again] = await chat.send(Text("发热"))
    assert "请从问题的选项中选择作答" in again.text and "您今天是否有以下症状" in again.text
    [alert] = await chat.press(symptoms, "完成")
    assert alert.how == "notice" and alert.alert and "至少" in alert.text
    assert chat.draft.qid == "symptoms"


async def test_a_required_question_cannot_be_skipped_with_a_made_up_key(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    [alert] = await chat.send(Press(chat.draft.key("temperature", SKIP)))
    assert alert.alert and alert.text == "请至少选择一项。"
    [alert] = await chat.send(Press(chat.draft.key("temperature", "36.5")))
    assert alert.alert and "按钮" in alert.text
    assert "temperature" not in chat.draft.answers


async def test_photos_must_be_fresh(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    symptoms = last(await chat.send(Text("36.6")))
    await chat.press(symptoms, "以上都没有")
    await chat.press(last(await chat.press(symptoms, "完成")), "否")
    [refusal] = await chat.send(Photo("p1", forwarded=True))
    assert "转发" in refusal.text and "如有需要，请上传一张照片" in refusal.text
    [refusal] = await chat.send(Text("没有"))
    assert "请发送一张照片" in refusal.text
    chat.files["AgACAgIAAx"] = JPEG
    [summary] = await chat.send(Photo("AgACAgIAAx"))
    assert "已附照片" in summary.text
    [kept] = (await chat.session.exec(select(PhotoRow))).all()
    assert chat.draft.answers["photo"] == f"media:{kept.id}"
    assert (kept.content, kept.content_type, kept.size) == (JPEG, "image/jpeg", len(JPEG))
    assert (kept.question, kept.local_day, kept.channel) == ("photo", chat.draft.day, "test")


async def at_the_photo(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    symptoms = last(await chat.send(Text("36.6")))
    await chat.press(symptoms, "以上都没有")
    await chat.press(last(await chat.press(symptoms, "完成")), "否")


async def test_a_photo_the_channel_cannot_give_is_asked_for_again_and_nothing_kept(
    chat: Chat,
) -> None:
    await at_the_photo(chat)
    with speaking("en"):
        [again] = await chat.send(Photo("expired-media-id"))
    assert "the photo could not be received. Please send it again" in again.text
    assert "send a photo" in again.text  # the question again
    assert "photo" not in chat.draft.answers and chat.state.state == ANSWERING
    assert (await chat.session.exec(select(PhotoRow))).all() == []
    chat.files["fresh"] = JPEG
    [summary] = await chat.send(Photo("fresh"))
    assert "已附照片" in summary.text and chat.draft.answers["photo"].startswith("media:")


async def test_a_photo_too_large_is_refused_with_the_limit(chat: Chat) -> None:
    await at_the_photo(chat)
    chat.files["huge"] = JPEG + b"x" * MAX_PHOTO_BYTES
    with speaking("en"):
        [again] = await chat.send(Photo("huge"))
    assert "too large (at most 5 MB)" in again.text and "photo" not in chat.draft.answers
    assert (await chat.session.exec(select(PhotoRow))).all() == []


async def test_a_photo_sent_outside_a_photo_question_is_not_kept(chat: Chat) -> None:
    """Only what the form asks is collected: a photo at the temperature question is refused
    before anything is fetched."""
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    chat.files["p"] = JPEG
    [again] = await chat.send(Photo("p"))
    assert "体温" in again.text
    assert (await chat.session.exec(select(PhotoRow))).all() == []


# -- yes/no with a follow-up ------------------------------------------------------------------


async def test_yes_asks_for_the_details_in_the_same_message(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    symptoms = last(await chat.send(Text("36.6")))
    await chat.press(symptoms, "以上都没有")
    exposure = last(await chat.press(symptoms, "完成"))
    _ack, details = await chat.press(exposure, "是")
    assert details.how == "replace" and "请简要说明具体情况" in details.text
    assert details.options == [] and chat.draft.data["follow_up"] is True
    [again] = await chat.send(Photo("p"))
    assert "请用文字说明具体情况" in again.text
    [again] = await chat.send(Text("x" * 201))
    assert "内容过长，最多 200 个字" in again.text
    [photo] = await chat.send(Text(" 途经武汉 "))
    assert "如有需要，请上传一张照片" in photo.text and chat.draft.data["follow_up"] is False
    assert chat.draft.answers["exposure"] == {"yes": True, "detail": "途经武汉"}


# -- the summary ------------------------------------------------------------------------------


async def test_editing_one_answer_from_the_summary(chat: Chat) -> None:
    summary = await to_summary(chat)
    _ack, choices = await chat.press(summary, "修改回答")
    assert choices.how == "update_options"
    assert choices.labels() == ["位置", "体温", "症状", "接触史/行程", "照片", "« 返回"]
    _ack, back = await chat.press(choices, "返回")
    assert back.how == "update_options" and back.labels() == summary.labels()
    _ack, question = await chat.press(choices, "症状")
    assert question.how == "replace" and chat.state.state == ANSWERING
    assert "☑️ 以上都没有" in question.labels()  # the earlier answer, ticked
    await chat.press(question, "咳嗽")
    _ack, summary = await chat.press(question, "完成")
    assert summary.how == "replace" and "咳嗽" in summary.text and "⚠️" in summary.text
    _ack, choices = await chat.press(summary, "修改回答")
    _ack, temperature = await chat.press(choices, "体温")
    assert "请输入您今天测量的体温" in temperature.text and temperature.how == "replace"
    [summary] = await chat.send(Text("36.9"))
    assert "36.9 °C" in summary.text and chat.state.state == SUMMARY
    await chat.press(summary, "确认提交")
    [stored] = await chat.stored()
    assert stored.answers["symptoms"] == ["cough"] and stored.answers["temperature"] == 36.9


async def test_typing_at_the_summary_shows_it_again(chat: Chat) -> None:
    await to_summary(chat)
    [again] = await chat.send(Text("好了"))
    assert again.text.startswith("请选择一个选项，确认或修改您的回答。\n\n<b>请核对")
    assert again.labels() == ["✅ 确认提交", "✏️ 修改回答", "❌ 取消"]


async def test_cancel_at_the_summary_records_nothing(chat: Chat) -> None:
    summary = await to_summary(chat)
    _ack, done = await chat.press(summary, "取消")
    assert done.how == "replace" and "已取消" in done.text
    assert chat.state.state is None and await chat.stored() == []


async def test_outside_the_geofence_is_flagged_not_refused(chat: Chat) -> None:
    chat.org.geofence_lat, chat.org.geofence_lon = TIANANMEN
    chat.org.geofence_radius_m = 5000
    summary = await to_summary(chat, where=SHENZHEN)
    assert "不在您所在单位的范围内" in summary.text
    _ack, done = await chat.press(summary, "确认提交")
    assert "异常" in done.text and "位置超出范围" in done.text
    [stored] = await chat.stored()
    assert stored.outside_geofence and stored.reasons == ["geofence"] and stored.abnormal


# -- stale and forged buttons -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data", ["ans", "ans:x", "ans:a:b:c:d", "ans:" + "x" * 70, "go:1", "sum:x", "sum:a:b:c:d"]
)
async def test_a_key_that_does_not_unpack_is_answered_not_obeyed(chat: Chat, data: str) -> None:
    await chat.send(Command("checkin"))
    before = dict(chat.state.data)
    if data.startswith("sum"):
        await chat.state.set_state(SUMMARY)
    elif data.startswith("go"):
        await chat.state.set_state(None)
    [alert] = await chat.send(Press(data))
    assert alert.how == "notice" and alert.alert and "该按钮已失效" in alert.text
    assert chat.state.data == before


async def test_a_button_of_an_earlier_question_asks_the_current_one(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    stale = AnswerKey(draft=chat.draft.id, q="symptoms", value="none").pack()
    notice, again = await chat.send(Press(stale))
    assert notice.text == "这是之前问题的按钮，已失效。" and not notice.alert
    assert again.how == "say" and "请输入您今天测量的体温" in again.text
    other = AnswerKey(draft="00000000", q="temperature", value=SKIP).pack()
    notice, _again = await chat.send(Press(other))
    assert "之前问题" in notice.text and chat.draft.qid == "temperature"


async def test_a_summary_button_of_an_earlier_check_in_is_refused(chat: Chat) -> None:
    await to_summary(chat)
    [alert] = await chat.send(Press(SummaryKey(draft="00000000", action="confirm").pack()))
    assert alert.alert and "之前" in alert.text
    assert await chat.stored() == []


async def test_picking_a_question_the_form_does_not_have_does_nothing(chat: Chat) -> None:
    await to_summary(chat)
    key = SummaryKey(draft=chat.draft.id, action="pick", q="mood").pack()
    assert [s.how for s in await chat.send(Press(key))] == ["notice"]
    assert chat.state.state == SUMMARY


async def test_a_draft_of_someone_else_or_gone_is_closed(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    chat.state.data["member"] = 999
    [said] = await chat.send(Location(*TIANANMEN))
    assert "该次打卡已失效" in said.text and chat.state.state is None
    await chat.state.set_state(ANSWERING)
    notice = await chat.send(Press(AnswerKey(draft="x", q="location", value=SKIP).pack()))
    assert [s.how for s in notice] == ["say", "notice"]


async def test_a_draft_left_overnight_restarts_for_the_new_day(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN))
    chat.clock.advance(timedelta(days=1))
    [expired] = await chat.send(Text("36.5"))
    assert "您 2026-11-28 未完成的打卡已过期" in expired.text and "(1/5)" in expired.text
    assert chat.draft.day == date(2026, 11, 29) and chat.draft.answers == {}


async def test_someone_unenrolled_mid_check_in_is_told_nothing_was_recorded(chat: Chat) -> None:
    await chat.send(Command("checkin"))
    chat.visitor = Visitor(channel="telegram", external_id=str(101), account=None)
    [said] = await chat.send(Location(*TIANANMEN))
    assert "本次未记录任何内容" in said.text and chat.state.state is None


# -- the other kinds in a form of their own ---------------------------------------------------


DEMO = parse_form(
    {
        "version": 1,
        "title": {"zh": "演示", "en": "Demo"},
        "questions": [
            {
                "id": "mood",
                "kind": "choice",
                "text": {"zh": "心情？", "en": "Mood?"},
                "label": {"zh": "心情", "en": "Mood"},
                "options": [
                    {"id": "good", "text": {"zh": "好", "en": "Good"}},
                    {"id": "bad", "text": {"zh": "差", "en": "Bad"}},
                ],
                "abnormal": {"in": ["bad"]},
            },
            {
                "id": "note",
                "kind": "text",
                "text": {"zh": "备注", "en": "Note"},
                "max_length": 5,
                "required": False,
            },
        ],
    },
    name="demo",
)


@pytest.fixture
def demo(chat: Chat, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    real: Callable[[str], Form] = checkin.load_form
    monkeypatch.setattr(checkin, "load_form", lambda name: DEMO if name == "demo" else real(name))
    chat.org.form = "demo"
    yield chat


async def test_a_choice_and_an_optional_text(demo: Chat) -> None:
    [mood] = await demo.send(Command("checkin"))
    assert mood.text == "(1/2) 心情？" and mood.labels() == ["好", "差"]
    assert AnswerKey.unpack(mood.keys()[1]) == AnswerKey(
        draft=demo.draft.id, q="mood", value="bad"
    )
    [again] = await demo.send(Text("差"))
    assert "请从问题的选项中选择作答" in again.text
    [alert] = await demo.send(Press(demo.draft.key("mood", "awful")))
    assert alert.alert and alert.text == "请点击下方按钮进行选择。"
    _ack, note = await demo.press(mood, "差")
    assert note.text.startswith("✔ 心情: <b>差</b>\n\n(2/2) 备注") and note.labels() == ["⏭ 跳过"]
    [again] = await demo.send(Text("太长的一段话"))
    assert "最多 5 个字" in again.text
    [again] = await demo.send(Location(*TIANANMEN))
    assert "请输入您的回答" in again.text
    _ack, summary = await demo.press(note, "跳过")
    assert "• 备注: 未填" in summary.text and "• 心情: 差 ⚠️" in summary.text
    await demo.press(summary, "确认提交")
    [stored] = await demo.stored()
    assert stored.answers == {"mood": "bad", "note": None} and stored.reasons == ["mood"]
    assert stored.latitude is None and stored.form == "demo"


async def test_a_text_answer_is_stored_trimmed(demo: Chat) -> None:
    [mood] = await demo.send(Command("checkin"))
    await demo.press(mood, "好")
    [summary] = await demo.send(Text("  还行 "))
    assert "• 备注: 还行" in summary.text and demo.draft.answers["note"] == "还行"


# -- keys -------------------------------------------------------------------------------------


def test_keys_pack_as_the_buttons_already_in_chats() -> None:
    """aiogram's CallbackData format: buttons sent before the core existed keep working."""
    assert AnswerKey(draft="ab12cd34", q="temperature", value=SKIP).pack() == (
        "ans:ab12cd34:temperature:__skip"
    )
    assert SummaryKey(draft="ab12cd34", action="confirm").pack() == "sum:ab12cd34:confirm:"
    assert SummaryKey.unpack("sum:ab12cd34:pick:photo").q == "photo"
    assert StartCheckInKey().pack() == "go"


async def test_a_photo_replaced_or_cancelled_is_not_kept(chat: Chat) -> None:
    """ "Nothing was recorded" holds for photos too: a photo replaced while editing, skipped
    after all, or of a draft cancelled is deleted at once."""
    chat.files.update(first=JPEG, second=JPEG + b"2")
    await at_the_photo(chat)
    await chat.send(Photo("first"))
    first = chat.draft.answers["photo"]
    edit = SummaryKey(draft=chat.draft.id, action="pick", q="photo").pack()
    await chat.send(Press(edit))
    await chat.send(Photo("second"))
    [kept] = (await chat.session.exec(select(PhotoRow))).all()
    assert chat.draft.answers["photo"] == f"media:{kept.id}" != first
    await chat.send(Press(edit))
    await chat.send(Press(chat.draft.key("photo", SKIP)))
    assert (await chat.session.exec(select(PhotoRow))).all() == []
    await chat.send(Press(edit))
    await chat.send(Photo("first"))
    assert len((await chat.session.exec(select(PhotoRow))).all()) == 1
    await chat.send(Press(SummaryKey(draft=chat.draft.id, action="cancel").pack()))
    assert (await chat.session.exec(select(PhotoRow))).all() == []


async def test_a_drafts_photo_goes_when_the_draft_expires_overnight(chat: Chat) -> None:
    """Regression: a draft replaced by a new day's (begin) kept its photos until retention;
    the photos of the day's check-in stay."""
    chat.files.update(submitted=JPEG, again=JPEG + b"2")
    await at_the_photo(chat)
    await chat.press(last(await chat.send(Photo("submitted"))), "确认提交")
    [submitted] = (await chat.session.exec(select(PhotoRow))).all()
    assert (await chat.stored())[0].answers["photo"] == f"media:{submitted.id}"
    await at_the_photo(chat)  # "answering again" will update it
    await chat.send(Photo("again"))
    assert len((await chat.session.exec(select(PhotoRow))).all()) == 2
    chat.clock.advance(timedelta(days=1))
    [expired] = await chat.send(Text("anything"))
    assert "未完成的打卡已过期" in expired.text and chat.draft.answers == {}
    assert [p.id for p in (await chat.session.exec(select(PhotoRow))).all()] == [submitted.id]


async def test_cancel_drops_the_drafts_photo_and_a_typed_reference_is_not_followed(
    chat: Chat,
) -> None:
    chat.files["p"] = JPEG
    await at_the_photo(chat)
    await chat.send(Photo("p"))
    [kept] = (await chat.session.exec(select(PhotoRow))).all()
    state = Draft(copy.deepcopy(chat.state.data))
    state.answers["temperature"] = f"media:{kept.id}"  # a reference where no photo goes
    state.answers["photo"] = None
    turn = Turn(
        Person("test", "101", "zh"),
        chat.visitor,
        Repo(chat.session),
        chat.clock,
        chat.state,
        chat.out,
    )
    await photos.discard_draft_photos(turn, state.data)
    assert len((await chat.session.exec(select(PhotoRow))).all()) == 1
    await common.on_cancel(turn)
    await chat.session.commit()
    assert (await chat.session.exec(select(PhotoRow))).all() == []


# -- boxes ticked on the channel's side (a WeCom vote card, numbers typed together) -----------


def boxes(said: Said) -> dict[str, str]:
    """A choose-several question's boxes by their text, and its submit under "DONE"."""
    keyed = {o.box.text: o.key for row in said.options for o in row if o.box and o.key}
    [done] = [o.key for row in said.options for o in row if o.submit and o.key]
    return {**keyed, "DONE": done}


async def at_symptoms(chat: Chat) -> Said:
    await chat.send(Command("checkin"))
    await chat.send(Location(*TIANANMEN, accuracy=12.5))
    return last(await chat.send(Text("36.5")))


async def test_boxes_ticked_elsewhere_are_submitted_with_done(chat: Chat) -> None:
    symptoms = await at_symptoms(chat)
    keys = boxes(symptoms)
    assert next(o.box for row in symptoms.options for o in row) is not None  # the boxes say so
    assert symptoms.labels()[0] == "⬜ 发热"  # and still draw themselves for Telegram

    # Ticked out of order, one twice, "none of these" beside real ones: form order, the
    # real ones win (as when it is ticked first), and the answer is shown with the next one.
    chosen = (keys["咽痛"], keys["发热"], keys["发热"], keys["以上都没有"])
    ack, exposure = await chat.send(Press(keys["DONE"], chosen=chosen))
    assert ack.how == "notice" and exposure.how == "replace"
    assert exposure.text.startswith("✔ 症状: <b>发热、咽痛</b>\n\n(4/5) ")
    assert chat.draft.answers["symptoms"] == ["fever", "sore_throat"]


async def test_a_submission_of_nothing_or_of_a_forged_box_is_asked_again(chat: Chat) -> None:
    symptoms = await at_symptoms(chat)
    keys = boxes(symptoms)

    _ack, again = await chat.send(Press(keys["DONE"], chosen=()))
    assert again.how == "replace" and again.text.startswith("请至少选择一项。\n\n(3/5) ")
    assert chat.draft.qid == "symptoms" and "symptoms" not in chat.draft.answers

    draft = chat.draft.id
    forged = (
        f"ans:{draft}:symptoms:plague",  # not an option of the question
        f"ans:{draft}:exposure:fever",  # another question's
        "ans:deadbeef:symptoms:fever",  # another draft's
        "sum:x:confirm",  # not an answer's key at all
        "x" * 5000,
    )
    for bad in forged:
        _ack, again = await chat.send(Press(keys["DONE"], chosen=(keys["发热"], bad)))
        assert again.text.startswith("请从问题的选项中选择作答。\n\n(3/5) "), bad
        assert chat.draft.qid == "symptoms" and "symptoms" not in chat.draft.answers
    _ack, again = await chat.send(Press(keys["DONE"], chosen=(keys["发热"],) * 65))
    assert again.text.startswith("请从问题的选项中选择作答。")

    # A box's own key sent as the submit is not Done: refused the same way.
    _ack, again = await chat.send(Press(keys["发热"], chosen=(keys["发热"],)))
    assert again.text.startswith("请从问题的选项中选择作答。") or "请点击" in again.text
    assert "symptoms" not in chat.draft.answers

    _ack, exposure = await chat.send(Press(keys["DONE"], chosen=(keys["以上都没有"],)))
    assert exposure.text.startswith("✔ 症状: <b>以上都没有</b>")


async def test_toggling_still_works_beside_submissions(chat: Chat) -> None:
    """Telegram's way (each box a button, then Done) and the submission meet in one draft:
    a submission replaces what was toggled."""
    symptoms = await at_symptoms(chat)
    keys = boxes(symptoms)
    _ack, redraw = await chat.send(Press(keys["咳嗽"]))
    assert redraw.how == "update_options" and "☑️ 咳嗽" in redraw.labels()
    assert [o.box.ticked for row in redraw.options for o in row if o.box][:2] == [False, True]
    _ack, _exposure = await chat.send(Press(keys["DONE"], chosen=(keys["乏力"],)))
    assert chat.draft.answers["symptoms"] == ["fatigue"]


async def test_a_forged_selection_with_another_questions_button_is_refused(chat: Chat) -> None:
    symptoms = await at_symptoms(chat)
    exposure = last(
        await chat.send(Press(boxes(symptoms)["DONE"], chosen=(boxes(symptoms)["发热"],)))
    )
    [no] = [o.key for row in exposure.options for o in row if o.label == "否" and o.key]
    _ack, again = await chat.send(Press(no, chosen=("ans:x:y:z",)))
    assert again.text.startswith("请从问题的选项中选择作答。\n\n(4/5) ")
    assert "exposure" not in chat.draft.answers
    _ack, _photo = await chat.send(Press(no))
    assert chat.draft.answers["exposure"]["yes"] is False
