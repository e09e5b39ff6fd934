"""A member's own data in the core: /today, /history and /mydata, and only their own."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from domain.conversation import member
from domain.conversation.io import Ask
from domain.conversation.member import StartCheckInKey
from storage import owned
from storage.models import AuditEntry
from storage.repo import Repo, Submission
from tests.domain.conversation.enrolling import one
from tests.domain.conversation.world import World
from tests.storage.seeding import telegram_account

STRANGER, ZHANG, LI = 500, 501, 502
TODAY = date(2026, 11, 28)  # the world's clock: 09:00 in Shanghai
ANSWERS: dict[str, Any] = {
    "location": {"lat": 39.9087, "lon": 116.3975},
    "temperature": 37.6,
    "symptoms": ["cough"],
    "exposure": {"yes": False, "detail": None},
}


async def school(world: World, *, enrolled_days_ago: int = 3) -> None:
    """Zhang San (Class 1) and Li Si (Class 1) enrolled some days ago."""
    await world.org()
    since = world.clock.now() - timedelta(days=enrolled_days_ago)

    async def bind(repo: Repo) -> None:
        for telegram_id, external_id in ((ZHANG, "2024001"), (LI, "2024002")):
            row = await repo.members.by_external(
                org_id=world.org_ids["school"], external_id=external_id
            )
            assert row is not None
            account_id = await telegram_account(repo, telegram_id, since)
            await repo.members.bind(member=row, account_id=account_id, now=since)

    await world.using(bind)


async def check_in(
    world: World,
    external_id: str,
    day: date,
    *,
    abnormal: bool = False,
    reasons: tuple[str, ...] = (),
    answers: dict[str, Any] | None = None,
    province: str | None = None,
    city: str | None = None,
) -> None:
    row = await world.member(external_id)

    async def submit(repo: Repo) -> None:
        await repo.checkins.submit(
            member=row,
            local_day=day,
            form="health",
            form_version=1,
            submission=Submission(
                answers=answers if answers is not None else {"temperature": 36.5},
                abnormal=abnormal,
                reasons=list(reasons),
                latitude=39.9087,
                longitude=116.3975,
                province=province,
                city=city,
                outside_geofence="geofence" in reasons,
            ),
            update_id=None,
            now=world.clock.now(),
        )

    await world.using(submit)


def test_check_in_now_keeps_its_telegram_wire_format() -> None:
    from handlers.telegram.keyboards import StartCheckInCb

    assert StartCheckInKey().pack() == StartCheckInCb().pack() == "go"


async def test_strangers_have_no_days(world: World) -> None:
    await school(world)
    for handler in (member.on_today, member.on_history):
        said = one(await world.turn(STRANGER, handler))
        assert said.text == "You are not enrolled yet. Please open your invite link first."


async def test_today_before_checking_in_offers_to_do_it(world: World) -> None:
    await school(world)
    await check_in(world, "2024002", TODAY)  # Li Si's, not Zhang San's
    said = one(await world.turn(ZHANG, member.on_today))
    assert said.text == "You have not checked in today (2026-11-28) yet."
    assert said.labels() == ["✅ Check in now"] and said.keys() == ["go"]
    assert said.ask is None


async def test_today_after_checking_in_shows_the_answers(world: World) -> None:
    await school(world)
    reasons = ("temperature", "symptoms", "geofence")
    for _ in range(2):  # an amended check-in
        await check_in(
            world,
            "2024001",
            TODAY,
            abnormal=True,
            reasons=reasons,
            answers=ANSWERS,
            province="北京市",
            city="北京市",
        )
    said = one(await world.turn(ZHANG, member.on_today))
    assert said.ask is Ask.MENU
    assert said.text.splitlines() == [
        "<b>Today (2026-11-28)</b>: checked in at 09:00.",
        "• Location: 39.90870, 116.39750",
        "• Temperature: 37.6 °C ⚠️",
        "• Symptoms: Cough ⚠️",
        "• Exposure/travel: No",
        "• Photo: skipped",
        "• Place: 北京市",
        "⚠️ This location is outside your organisation's area.",
        "(updated 1 times)",
    ]


async def test_today_in_chinese(world: World) -> None:
    await school(world)
    await check_in(world, "2024001", TODAY, answers={"temperature": 36.5})
    world.speaks(ZHANG, "zh")
    said = one(await world.turn(ZHANG, member.on_today))
    assert "今天" in said.text and "• 体温: 36.5 °C" in said.text and "⚠️" not in said.text


async def test_history_shows_the_days_since_enrolment(world: World) -> None:
    await school(world, enrolled_days_ago=3)
    await check_in(
        world,
        "2024001",
        TODAY - timedelta(days=3),
        abnormal=True,
        reasons=("temperature", "geofence"),
    )
    await check_in(world, "2024001", TODAY - timedelta(days=2))
    await check_in(world, "2024002", TODAY - timedelta(days=1))  # Li Si's
    said = one(await world.turn(ZHANG, member.on_history))
    assert said.ask is Ask.MENU
    assert said.text.splitlines() == [
        "<b>Your last 14 days</b>",
        "❌ 2026-11-28 not yet",
        "❌ 2026-11-27 not checked in",
        "✅ 2026-11-26 normal",
        "⚠️ 2026-11-25 abnormal (Temperature, location)",
    ]
    await check_in(world, "2024001", TODAY)
    said = one(await world.turn(ZHANG, member.on_history))
    assert said.text.splitlines()[1] == "✅ 2026-11-28 normal"


async def test_history_covers_fourteen_days_at_most(world: World) -> None:
    await school(world, enrolled_days_ago=40)
    await check_in(world, "2024001", TODAY - timedelta(days=14))  # one day too old
    said = one(await world.turn(ZHANG, member.on_history))
    days = said.text.splitlines()[1:]
    assert len(days) == 14
    assert days[-1] == "❌ 2026-11-15 not checked in"
    assert "2026-11-14" not in said.text


async def test_history_in_chinese_lists_reasons_with_the_chinese_comma(world: World) -> None:
    await school(world)
    await check_in(
        world, "2024001", TODAY, abnormal=True, reasons=("temperature", "symptoms", "unknown")
    )
    world.speaks(ZHANG, "zh")
    said = one(await world.turn(ZHANG, member.on_history))
    assert "⚠️ 2026-11-28 " in said.text and "体温、症状" in said.text


async def test_mydata_sends_everything_stored_and_who_can_read_it(world: World) -> None:
    await school(world)
    await check_in(
        world, "2024001", TODAY, abnormal=True, reasons=("temperature",), answers=ANSWERS
    )
    await check_in(world, "2024002", TODAY, answers={"temperature": 36.1})  # Li Si's

    async def seed(repo: Repo) -> None:
        org_id, now = world.org_ids["school"], world.clock.now()
        await repo.accounts.record_consent(
            account_id=await telegram_account(repo, ZHANG, now),
            org_id=org_id,
            version=1,
            accepted=True,
            now=now,
        )
        for telegram_id, path in ((700, "College/Class 1"), (701, "College"), (702, None)):
            unit = await repo.units.require(org_id=org_id, name_path=path) if path else None
            await repo.roles.grant(
                org_id=org_id,
                account_id=await telegram_account(repo, telegram_id, now),
                unit_id=unit.id if unit else None,
                role="manager" if unit else "admin",
                now=now,
            )
        other = await repo.units.require(org_id=org_id, name_path="College/Class 2")
        await repo.roles.grant(
            org_id=org_id,
            account_id=await telegram_account(repo, 703, now),
            unit_id=other.id,
            role="manager",
            now=now,
        )

    await world.using(seed)
    document, readers = await world.turn(ZHANG, member.on_mydata)
    assert (document.how, document.name, document.image) == ("file", "daka-mydata.json", False)
    assert document.text == "Everything Daka stores about you."
    assert document.data is not None
    data = json.loads(document.data.decode("utf-8"))
    assert [(i["channel"], i["id"]) for i in data["identities"]] == [("telegram", str(ZHANG))]
    assert "telegram_id" not in data and data["account"][0]["language"] is None
    [enrolment] = data["enrolments"]
    assert (enrolment["organisation"], enrolment["unit"]) == ("First School", "College/Class 1")
    assert (enrolment["member_id"], enrolment["name"]) == ("2024001", "Zhang San")
    [checkin] = data["check_ins"]
    assert checkin["answers"] == ANSWERS and checkin["abnormal"] is True
    assert checkin["day"] == "2026-11-28" and checkin["latitude"] == 39.9087
    assert [r["answers"] for r in checkin["revisions"]] == [ANSWERS]
    [consent] = data["consents"]
    assert (consent["organisation"], consent["accepted"], consent["notice_version"]) == (
        "First School",
        True,
        1,
    )
    assert "36.1" not in document.data.decode("utf-8")  # nobody else's
    assert readers.text.splitlines() == [
        "<b>Who can read your check-ins</b>",
        "• managers of College/Class 1",
        "• managers of College",
        "• administrators of First School",
    ]
    [audit] = await world.rows(AuditEntry)
    assert (audit.action, audit.actor, audit.subject) == ("mydata", f"telegram:{ZHANG}", "2024001")


async def test_mydata_of_someone_enrolled_nowhere(world: World) -> None:
    await school(world)
    document, readers = await world.turn(STRANGER, member.on_mydata)
    assert document.data is not None
    data = json.loads(document.data)
    assert data["format"] == "daka-personal-data/1"
    assert all(data[kind.name] == [] for kind in owned.REGISTRY)  # nothing is kept of them
    assert data["who_can_read"] == []
    assert readers.text == "<b>Who can read your check-ins</b>\nNobody but you."
    assert await world.rows(AuditEntry) == []


async def test_mydata_covers_every_enrolment(world: World) -> None:
    await school(world)
    await world.org("village", name="East <Village>", roster=[("Group 1", "V001", "Zhang San")])

    async def bind(repo: Repo) -> None:
        row = await repo.members.by_external(org_id=world.org_ids["village"], external_id="V001")
        assert row is not None
        now = world.clock.now()
        await repo.members.bind(
            member=row, account_id=await telegram_account(repo, ZHANG, now), now=now
        )
        await repo.roles.grant(
            org_id=world.org_ids["village"],
            account_id=await telegram_account(repo, 900, now),
            unit_id=None,
            role="admin",
            now=world.clock.now(),
        )

    await world.using(bind)
    document, readers = await world.turn(ZHANG, member.on_mydata)
    assert document.data is not None
    data = json.loads(document.data)
    assert [e["organisation"] for e in data["enrolments"]] == ["First School", "East <Village>"]
    assert "administrators of East &lt;Village&gt;" in readers.text
    assert [a.subject for a in await world.rows(AuditEntry)] == ["2024001", "V001"]
