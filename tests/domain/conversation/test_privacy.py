"""A member's privacy rights in the core: the consent notice states each answer's period, /mydata
holds every kind of record, /withdraw (with its confirmation) stops collection at once and
erases on schedule, and every step is audited."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from sqlmodel import select

from domain.conversation import checkin, enrolment, lists, member, privacy
from domain.conversation.drafts import ANSWERING
from domain.conversation.io import Ask, Command, Location, Said
from domain.conversation.privacy import WithdrawKey
from domain.conversation.turn import Turn
from storage import owned
from storage.models import AuditEntry, CheckIn, CheckInRevision, Consent, Member, Outbox
from storage.repo import Repo, Submission
from storage.schedules import Letter, OutboxRepo
from storage.scope import Scope
from tests.domain.conversation.enrolling import consent_notice, enrol, one
from tests.domain.conversation.world import World
from tests.storage.seeding import telegram_account

ZHANG, LI, STRANGER, ADMIN = 501, 502, 500, 700
TODAY = date(2026, 11, 28)
ANSWERS: dict[str, Any] = {
    "location": {"lat": 39.9087, "lon": 116.3975, "accuracy": 10.0, "live": False},
    "temperature": 37.6,
    "symptoms": ["cough"],
    "exposure": {"yes": True, "detail": "Wuhan, 20 Nov"},
    "photo": "AgACAgQ-file-id",
}


async def no_files(ref: str) -> bytes:
    raise LookupError(ref)


def nowhere(lat: float, lon: float) -> None:
    return None


async def enrolled(world: World, *, grace: int | None = None) -> None:
    """Zhang San and Li Si enrolled through the real conversation, an administrator granted."""
    await world.org()
    if grace is not None:

        async def set_grace(repo: Repo) -> None:
            org = await repo.orgs.get(org_id=world.org_ids["school"])
            org.withdrawal_grace_days = grace

        await world.using(set_grace)
    code = await world.invite()
    await enrol(world, ZHANG, "2024001", "Zhang San", code)
    await enrol(world, LI, "2024002", "Li Si", code)

    async def admin(repo: Repo) -> None:
        await repo.roles.grant(
            org_id=world.org_ids["school"],
            account_id=await telegram_account(repo, ADMIN, world.clock.now()),
            unit_id=None,
            role="admin",
            now=world.clock.now(),
        )

    await world.using(admin)


async def submit(world: World, external_id: str, day: date, answers: dict[str, Any]) -> None:
    row = await world.member(external_id)

    async def work(repo: Repo) -> None:
        await repo.checkins.submit(
            member=row,
            local_day=day,
            form="health",
            form_version=1,
            submission=Submission(
                answers=dict(answers),
                abnormal=True,
                reasons=["temperature"],
                latitude=39.9087,
                longitude=116.3975,
                accuracy_m=10.0,
                province="北京市",
                city="北京市",
            ),
            update_id=None,
            now=world.clock.now(),
        )

    await world.using(work)


async def withdraw(world: World, who: int) -> list[Said]:
    """/withdraw, then "Yes" on its confirmation."""
    confirmation = one(await world.turn(who, privacy.on_withdraw))
    return await world.turn(who, privacy.on_withdraw_press, confirmation.keys()[0])


async def check_in_start(world: World, who: int) -> list[Said]:
    async def start(turn: Turn) -> None:
        await checkin.on_start(turn, Command("checkin"), resolve=nowhere)

    return await world.turn(who, start)


async def test_the_consent_notice_states_the_periods_of_the_form(world: World) -> None:
    await world.org()
    code = await world.invite()
    notice = await consent_notice(world, STRANGER, code)
    assert (
        "<b>How long</b>\nEach answer is deleted once its period is over:\n"
        "• Location: 14 days\n• Temperature: 30 days\n• Symptoms: 30 days\n"
        "• Exposure/travel: 30 days\n• Exposure/travel, the details you type: 14 days\n"
        "• Photo: 7 days\n"
    ) in notice.text
    assert (
        "/withdraw withdraws your consent" in notice.text and "erased 7 days later" in notice.text
    )

    world.speaks(600, "zh")
    notice = await consent_notice(world, 600, code)
    assert "• 位置：14 天\n• 体温：30 天" in notice.text
    assert "• 接触史/行程（您填写的具体情况）：14 天" in notice.text
    assert "发送 /withdraw 可撤回同意" in notice.text and "将在 7 天后删除" in notice.text


async def test_a_location_form_states_the_organisation_default(world: World) -> None:
    await world.org(form="location")

    async def shorter(repo: Repo) -> None:
        org = await repo.orgs.get(org_id=world.org_ids["school"])
        org.retain_days, org.withdrawal_grace_days = 10, 0

    await world.using(shorter)
    notice = await consent_notice(world, STRANGER, await world.invite())
    assert "• Location: 10 days\n" in notice.text and "erased at once" in notice.text


async def test_withdraw_asks_to_confirm_and_says_what_it_means(world: World) -> None:
    await enrolled(world)
    said = one(await world.turn(ZHANG, privacy.on_withdraw))
    assert said.text.startswith("<b>Withdraw your consent to First School?</b>")
    assert "no more check-ins, no more reminders" in said.text
    assert "erased after 7 days" in said.text and "legal hold" in said.text
    assert "stay counted in the figures" in said.text
    assert said.labels() == ["Yes, withdraw my consent", "No, keep taking part"]
    zhang = (await world.member("2024001")).id
    assert said.keys() == [f"wdr:{zhang}:1", f"wdr:{zhang}:0"]

    ack, kept = await world.turn(ZHANG, privacy.on_withdraw_press, said.keys()[1])
    assert (ack.how, kept.how) == ("notice", "replace")
    assert kept.text == "Nothing changed: you still take part in First School."
    assert (await world.member("2024001")).withdrawn_at is None
    assert await world.rows(AuditEntry) == []


async def test_a_withdrawal_stops_collection_at_once_and_is_audited(world: World) -> None:
    await enrolled(world)
    await check_in_start(world, ZHANG)  # a check-in under way
    assert world.state(ZHANG).state == ANSWERING

    async def queue_reminder(repo: Repo) -> None:
        zhang = await world.member("2024001")
        letter = Letter(
            org_id=world.org_ids["school"],
            channel="telegram",
            address=str(ZHANG),
            kind="remind",
            day=TODAY,
            slot="10:00",
            text="reminder",
            member_id=zhang.id,
        )
        await OutboxRepo(repo.session).enqueue([letter], now=world.clock.now())

    await world.using(queue_reminder)

    ack, notice, done = await withdraw(world, ZHANG)
    assert (ack.how, notice.how) == ("notice", "replace") and notice.options == []
    assert done.text.splitlines() == [
        "Your consent to First School is withdrawn. Daka will not ask you to check in any more.",
        "Your answers will be erased on 2026-12-05.",
        "Send /mydata to see everything Daka still stores about you.",
    ]
    assert done.ask is Ask.CLEAR  # no member menu: there is nothing to check in to
    assert world.state(ZHANG).state is None  # the check-in under way is gone

    zhang = await world.member("2024001")
    assert (zhang.withdrawn_at, zhang.withdrawn_day) == (world.clock.now(), TODAY)
    consents = [(c.accepted, c.version) for c in await world.rows(Consent) if c.account_id]
    assert consents[-1] == (False, 2)  # kept with the consents, the notice's version
    [letter] = await world.rows(Outbox)
    assert (letter.status, letter.error) == ("skipped", "withdrew consent")
    [audit] = [a for a in await world.rows(AuditEntry) if a.action == "consent.withdraw"]
    assert (audit.actor, audit.subject) == (f"telegram:{ZHANG}", "2024001")

    refused = one(await check_in_start(world, ZHANG))
    assert refused.text == (
        "You withdrew your consent to First School on 2026-11-28, so Daka no longer collects "
        "your check-ins. To take part again, please ask your counselor or village cadre."
    )
    assert await world.rows(CheckIn) == []
    again = one(await world.turn(ZHANG, privacy.on_withdraw))
    assert again.text == refused.text and again.options == []
    world.speaks(ZHANG, "zh")
    chinese = one(await check_in_start(world, ZHANG))
    assert "您已于 2026-11-28 撤回对First School的同意" in chinese.text

    invite = one(await world.turn(ZHANG, enrolment.on_invite, await world.invite()))
    assert "撤回" in invite.text and world.state(ZHANG).state is None  # no second enrolment


async def test_an_answer_to_a_draft_opened_before_the_withdrawal_is_refused(
    world: World,
) -> None:
    """The confirmation pressed from another device while a check-in was open elsewhere."""
    await enrolled(world)
    await check_in_start(world, ZHANG)
    draft_state = dict(world.state(ZHANG).data)
    await withdraw(world, ZHANG)
    world.state(ZHANG).state, world.state(ZHANG).data = ANSWERING, draft_state

    async def answer(turn: Turn) -> None:
        await checkin.on_answer(turn, Location(39.9, 116.4), resolve=nowhere, fetch=no_files)

    refused = one(await world.turn(ZHANG, answer))
    assert "You withdrew your consent" in refused.text
    assert world.state(ZHANG).state is None and await world.rows(CheckIn) == []


async def test_a_forged_or_stale_withdrawal_changes_nothing(world: World) -> None:
    await enrolled(world)
    li = (await world.member("2024002")).id
    assert li is not None
    forged = WithdrawKey(member=li, yes=True).pack()  # Li Si's enrolment, pressed by Zhang San
    said = one(await world.turn(ZHANG, privacy.on_withdraw_press, forged))
    assert (said.how, said.text, said.alert) == ("notice", "This button has expired.", True)
    for bad in ("wdr:abc:1", "wdr:0:1", f"wdr:{li}", f"wdr:{li}:1:extra", "wdr:99999999999:1"):
        said = one(await world.turn(ZHANG, privacy.on_withdraw_press, bad))
        assert said.how == "notice" and said.alert, bad
    assert all(m.withdrawn_at is None for m in await world.rows(Member))
    assert await world.rows(AuditEntry) == []


async def test_a_stranger_has_nothing_to_withdraw(world: World) -> None:
    await world.org()
    said = one(await world.turn(STRANGER, privacy.on_withdraw))
    assert said.text == "You are not enrolled anywhere, so there is no consent to withdraw."
    world.speaks(STRANGER, "zh")
    assert "尚未加入" in one(await world.turn(STRANGER, privacy.on_withdraw)).text


async def test_without_a_grace_period_the_answers_go_at_once(world: World) -> None:
    await enrolled(world, grace=0)
    await submit(world, "2024001", TODAY - timedelta(days=1), ANSWERS)
    _ack, _notice, done = await withdraw(world, ZHANG)
    assert "Your answers have been erased." in done.text
    [row] = await world.rows(CheckIn)
    assert row.answers == {} and row.latitude is None and row.reasons == []
    assert row.abnormal and row.province == "北京市"  # what the figures count stays
    assert [r.answers for r in await world.rows(CheckInRevision)] == [{}]
    actions = [a.action for a in await world.rows(AuditEntry)]
    assert actions == ["consent.withdraw", "member.erase"]


async def test_a_legal_hold_keeps_the_answers_of_a_withdrawal_without_grace(
    world: World,
) -> None:
    await enrolled(world, grace=0)
    await submit(world, "2024001", TODAY - timedelta(days=1), ANSWERS)

    async def hold(repo: Repo) -> None:
        zhang = await repo.members.by_external(
            org_id=world.org_ids["school"], external_id="2024001"
        )
        assert zhang is not None
        await repo.privacy.hold(
            member=zhang, reason="court order 2026-17", actor="cli", now=world.clock.now()
        )

    await world.using(hold)
    _ack, _notice, done = await withdraw(world, ZHANG)
    assert "must keep your answers for now (a legal hold)" in done.text
    [row] = await world.rows(CheckIn)
    assert row.answers["temperature"] == 37.6


async def test_managers_see_who_withdrew_and_cannot_nudge_them(world: World) -> None:
    await enrolled(world)
    await withdraw(world, ZHANG)
    org = await world.using(lambda repo: repo.orgs.get(org_id=world.org_ids["school"]))
    scope = Scope(org=org, unit_ids=None)

    async def view(turn: Turn) -> None:
        await lists.on_member(turn, scope, Command("member", "2024001"))

    said = one(await world.turn(ADMIN, view))
    assert "Withdrew consent on 2026-11-28: not asked, not counted from that day." in said.text
    zhang = await world.member("2024001")
    assert zhang.id is not None

    async def nudge(turn: Turn) -> None:
        from domain.conversation.manager_keys import NudgeKey

        await lists.on_nudge(turn, scope, NudgeKey(member=zhang.id or 0, day="2026-11-28"))

    refused = one(await world.turn(ADMIN, nudge))
    assert refused.text == "Zhang San withdrew consent and is not reminded." and refused.alert
    assert await world.rows(Outbox) == []


async def test_someone_enrolled_twice_withdraws_from_one_and_checks_in_to_the_other(
    world: World,
) -> None:
    await enrolled(world)
    await world.org("village", name="East Village", roster=[("Group 1", "V001", "Zhang San")])
    await enrol(world, ZHANG, "V001", "Zhang San", await world.invite("village"))
    first, second = await world.turn(ZHANG, privacy.on_withdraw)
    assert "First School" in first.text and "East Village" in second.text
    _ack, _notice, done = await world.turn(ZHANG, privacy.on_withdraw_press, first.keys()[0])
    assert done.ask is Ask.MENU  # still taking part in the village
    started = await check_in_start(world, ZHANG)
    assert started[-1].text.startswith("(1/5)")
    assert world.state(ZHANG).data["member"] == (await world.member("V001", "village")).id


async def test_mydata_holds_every_kind_of_record(world: World) -> None:
    """Enrolment, consents, every check-in version, excuses with reasons, reminders, who looked
    them up or exported them, and which roles can read what: every kind of the registry."""
    await enrolled(world)
    day = TODAY - timedelta(days=1)
    await submit(world, "2024001", day, ANSWERS)
    await submit(world, "2024001", day, {**ANSWERS, "temperature": 36.6})  # amended
    await submit(world, "2024002", day, {"temperature": 41.9})  # Li Si's: not Zhang San's
    org_id = world.org_ids["school"]

    async def seed(repo: Repo) -> None:
        from storage.schedules import ScheduleRepo

        now = world.clock.now()
        zhang = await repo.members.by_external(org_id=org_id, external_id="2024001")
        assert zhang is not None and zhang.id is not None
        await ScheduleRepo(repo.session).excuse(
            org_id=org_id,
            member_id=zhang.id,
            first_day=TODAY,
            last_day=TODAY,
            reason="sick leave",
            by=str(ADMIN),
            now=now,
        )
        letter = Letter(
            org_id=org_id,
            channel="telegram",
            address=str(ZHANG),
            kind="remind",
            day=TODAY,
            slot="08:00",
            text="⏰ Zhang San, please check in",
            member_id=zhang.id,
        )
        await OutboxRepo(repo.session).enqueue([letter], now=now)
        await repo.photos.add(
            member=zhang,
            local_day=day,
            question="photo",
            content=b"\xff\xd8\xff a photo",
            content_type="image/jpeg",
            channel="wecom",
            now=now,
        )
        college = await repo.units.require(org_id=org_id, name_path="College")
        arts = await repo.units.require(org_id=org_id, name_path="Arts")
        for action, subject in (
            ("member.view", "2024001"),
            ("member.view", "2024002"),  # Li Si looked up: not about Zhang San
            ("export", str(college.id)),  # a scope holding Zhang San's class
            ("export", str(arts.id)),  # a scope without him
            ("export", "0"),  # the whole organisation
            ("role.grant.manager", "2024001"),  # a subject that is a Telegram id, not him
        ):
            await repo.audit.log(
                org_id=org_id, actor=str(ADMIN), action=action, subject=subject, now=now
            )
        await repo.roles.grant(
            org_id=org_id,
            account_id=await telegram_account(repo, ZHANG, now),
            unit_id=arts.id,
            role="manager",
            now=now,
        )

    await world.using(seed)
    document, _readers = await world.turn(ZHANG, member.on_mydata)
    assert document.data is not None
    data = json.loads(document.data)
    for kind in owned.REGISTRY:
        assert data[kind.name], f"/mydata has no {kind.name}"
    [enrolment_row] = data["enrolments"]
    assert enrolment_row["member_id"] == "2024001" and enrolment_row["legal_hold"] is None
    assert [c["accepted"] for c in data["consents"]] == [True]
    assert [a["outcome"] for a in data["enrolment_attempts"]] == ["enrolled"]
    [role] = data["roles"]
    assert (role["role"], role["unit"]) == ("manager", "Arts")
    [checkin_row] = data["check_ins"]
    assert [r["answers"]["temperature"] for r in checkin_row["revisions"]] == [37.6, 36.6]
    assert checkin_row["answers"]["exposure"]["detail"] == "Wuhan, 20 Nov"
    [excuse] = data["excuses"]
    assert (excuse["reason"], excuse["first_day"]) == ("sick leave", "2026-11-28")
    [photo] = data["photos"]  # what it is, not its bytes
    assert photo == {
        "member_id": "2024001",
        "day": day.isoformat(),
        "question": "photo",
        "content_type": "image/jpeg",
        "bytes": 11,
        "channel": "wecom",
        "received_at": world.clock.now().isoformat(),
    }
    [letter] = data["messages"]
    assert letter["text"] == "⏰ Zhang San, please check in"
    seen = [(e["action"], e["subject"]) for e in data["access_log"]]
    assert seen == [
        ("member.view", "2024001"),
        ("export", str(await unit_id(world, "College"))),
        ("export", "0"),
    ]
    assert {(r["role"], r["scope"]) for r in data["who_can_read"]} == {("administrator", None)}
    assert "41.9" not in document.data.decode()  # nobody else's


async def unit_id(world: World, path: str) -> int:
    async def find(repo: Repo) -> int:
        unit = await repo.units.require(org_id=world.org_ids["school"], name_path=path)
        return unit.id or 0

    return await world.using(find)


async def test_mydata_after_withdrawal_and_erasure_says_so(world: World) -> None:
    await enrolled(world, grace=0)
    await submit(world, "2024001", TODAY - timedelta(days=1), ANSWERS)
    await withdraw(world, ZHANG)
    document, _readers = await world.turn(ZHANG, member.on_mydata)
    assert document.data is not None
    data = json.loads(document.data)
    [row] = data["enrolments"]
    assert row["withdrew_consent_at"] == row["answers_erased_at"] == "2026-11-28T01:00:00+00:00"
    assert [c["accepted"] for c in data["consents"]] == [True, False]
    assert data["check_ins"][0]["answers"] == {} and data["check_ins"][0]["abnormal"] is True
    actions = [e["action"] for e in data["access_log"]]
    assert actions == ["consent.withdraw", "member.erase"]


async def test_the_registry_is_what_mydata_and_the_cli_read(world: World) -> None:
    """The chat's file and the administrator's come from one registry (`storage.owned`)."""
    await enrolled(world)
    zhang = await world.member("2024001")

    async def both(repo: Repo) -> tuple[dict[str, Any], dict[str, Any]]:
        now = world.clock.now()
        mine = await owned.personal_data(
            repo.session, await owned.owner_of_account(repo.session, zhang.account_id), now=now
        )
        theirs = await owned.personal_data(repo.session, owned.owner_of_member(zhang), now=now)
        return mine, theirs

    mine, theirs = await world.using(both)
    assert (
        list(mine)
        == list(theirs)
        == [
            "format",
            "made_at",
            *(kind.name for kind in owned.REGISTRY),
            "who_can_read",
        ]
    )
    assert mine["enrolments"] == theirs["enrolments"]


async def test_a_press_of_the_other_buttons_reaches_no_withdrawal(world: World) -> None:
    await enrolled(world)
    said = one(await world.turn(ZHANG, privacy.on_withdraw_press, "go"))
    assert said.how == "notice" and said.alert
    assert (await world.member("2024001")).withdrawn_at is None


async def test_members_rows_stay_for_the_figures(world: World) -> None:
    await enrolled(world, grace=0)
    await withdraw(world, ZHANG)
    rows = await world.rows(Member)
    assert len(rows) == 4 and all(r.active for r in rows)
    async with world.sessions() as session:
        withdrawn = (
            await session.exec(select(Member).where(Member.external_id == "2024001"))
        ).one()
    assert withdrawn.name == "Zhang San" and withdrawn.erased_at is not None


async def test_after_withdrawing_no_reply_offers_the_check_in_menu(world: World) -> None:
    from domain.conversation import common

    await enrolled(world)
    await withdraw(world, ZHANG)
    start = one(await world.turn(ZHANG, enrolment.on_start))
    assert start.text.startswith("You withdrew your consent to First School on 2026-11-28")
    assert start.ask is Ask.CLEAR
    chatter = one(await world.turn(ZHANG, common.on_anything_else))
    assert (chatter.text, chatter.ask) == ("Send /help to see what I can do.", Ask.CLEAR)
    world.state(ZHANG).state = ANSWERING
    cancelled = one(await world.turn(ZHANG, common.on_cancel))
    assert cancelled.ask is Ask.CLEAR
    world.speaks(ZHANG, "zh")
    assert "/help" in one(await world.turn(ZHANG, common.on_anything_else)).text
