"""The one routing of every channel (domain.conversation.dispatch.converse), driven as a person
talks: neutral inputs in, by conversation state, what the core says collected, a real SQLite
database underneath. No HTTP, no aiogram: what the Telegram stories in tests/handlers/ show
over the fake Bot API holds here for any channel."""

from __future__ import annotations

from datetime import date

from domain.conversation import common
from domain.conversation.admin import ROSTER_WAITING
from domain.conversation.dispatch import ANYWHERE, COMMANDS, PRESSES, command_handler
from domain.conversation.drafts import ANSWERING, SUMMARY
from domain.conversation.enrolment import CONSENT, MEMBER_ID, NAME
from domain.conversation.io import Ask, Command, Document, Location, Photo, Press, Said, Text
from domain.conversation.manager_keys import MANAGER_KEYS
from domain.conversation.managers import COMMANDS as MANAGER_COMMANDS
from domain.i18n import speaking
from storage.models import AuditEntry, CheckIn, FsmRecord, Member
from storage.repo import Repo
from tests.domain.conversation.enrolling import one
from tests.domain.conversation.world import World
from tests.storage.seeding import telegram_account

STRANGER, ZHANG, MANAGER = 500, 501, 600
TIANANMEN = (39.9087, 116.3975)
STALE = "This button has expired. Send /checkin to start again."
NO_LONGER_VALID = "This button is no longer valid."
REFUSAL = "This command is for counselors, cadres and administrators."
BUSY = "You are in the middle of a check-in. Answer the question below, or /cancel."


async def school(world: World) -> None:
    """Zhang San (College/Class 1) enrolled; MANAGER manages the College."""
    await world.org()

    async def seed(repo: Repo) -> None:
        now = world.clock.now()
        zhang = await repo.members.by_external(
            org_id=world.org_ids["school"], external_id="2024001"
        )
        assert zhang is not None
        await repo.members.bind(
            member=zhang, account_id=await telegram_account(repo, ZHANG, now), now=now
        )
        college = await repo.units.require(org_id=world.org_ids["school"], name_path="College")
        await repo.roles.grant(
            org_id=world.org_ids["school"],
            account_id=await telegram_account(repo, MANAGER, now),
            unit_id=college.id,
            role="manager",
            now=now,
        )

    await world.using(seed)


def key_of(said: Said, label: str) -> str:
    """The key of the option whose label contains `label`."""
    [key] = [o.key for row in said.options for o in row if label in o.label and o.key]
    return key


async def press(world: World, who: int, said: Said, label: str) -> list[Said]:
    return await world.say(who, Press(key_of(said, label)))


# -- enrolment --------------------------------------------------------------------------------


async def test_a_newcomer_enrols_through_an_invite(world: World) -> None:
    await world.org()
    code = await world.invite()
    notice = one(await world.say(STRANGER, Command("start", code)))
    assert notice.text.startswith("<b>First School: daily check-in")
    assert notice.labels() == ["✅ I agree", "❌ I decline"]
    assert world.state(STRANGER).state == CONSENT

    first, again = await world.say(STRANGER, Text("what is this?"))
    assert first.text == "Please answer the consent notice first:" and again.text == notice.text

    ack, kept, asked = await press(world, STRANGER, notice, "I agree")
    assert (ack.how, kept.how, kept.options) == ("notice", "replace", [])
    assert asked.text.startswith("Thank you. Please send your member id")
    assert asked.ask is Ask.CLEAR and world.state(STRANGER).state == MEMBER_ID

    for not_an_id in (Text(""), Command("help"), Location(*TIANANMEN), Photo("p")):
        said = one(await world.say(STRANGER, not_an_id))
        assert said.text == "I need your member id as text. Send it, or /cancel to stop enrolling."
    assert one(await world.say(STRANGER, Text("2024001"))).text.startswith("Now send your full")
    assert world.state(STRANGER).state == NAME
    assert one(await world.say(STRANGER, Text(""))).text.startswith("I need your full name")

    welcome = one(await world.say(STRANGER, Text("Zhang San")))
    assert welcome.text.startswith("Welcome, Zhang San! You are enrolled in First School.")
    assert welcome.ask is Ask.MENU and world.state(STRANGER).state is None
    assert (await world.member("2024001")).account_id == await world.account_id_of(STRANGER)
    assert world.granted == []


async def test_a_person_of_another_channel_enrols_with_their_state_in_the_database(
    world: World,
) -> None:
    await world.org()
    code = await world.invite()
    notice = one(await world.say_on("wecom", "zhangsan", Command("start", code)))
    [row] = await world.rows(FsmRecord)
    assert (row.key, row.state, row.data) == ("wecom:zhangsan", CONSENT, {"code": code})
    await world.say_on("wecom", "zhangsan", Press(key_of(notice, "I agree")))
    await world.say_on("wecom", "zhangsan", Text("2024001"))
    welcome = one(await world.say_on("wecom", "zhangsan", Text("Zhang San")))
    assert welcome.text.startswith("Welcome, Zhang San!") and await world.rows(FsmRecord) == []
    first = one(await world.say_on("wecom", "zhangsan", Command("checkin")))
    assert first.ask is Ask.LOCATION
    [row] = await world.rows(FsmRecord)
    assert row.state == ANSWERING and row.data["q"] == "location"


async def test_a_managers_invite_grants_the_role_and_tells_the_channel(world: World) -> None:
    await world.org()
    code = await world.invite(role="manager", unit="College")
    notice = one(await world.say(MANAGER, Command("start", code)))
    _ack, _kept, granted = await press(world, MANAGER, notice, "I agree")
    assert granted.text == "You are now a manager of College."
    assert world.granted == [(str(MANAGER), "manager")]
    assert world.state(MANAGER).state is None


async def test_an_invite_is_taken_in_any_state_and_a_consent_press_only_in_its_own(
    world: World,
) -> None:
    await school(world)
    code = await world.invite()
    notice = one(await world.say(STRANGER, Command("start", code)))
    await world.say(STRANGER, Command("cancel"))
    said = one(await press(world, STRANGER, notice, "I agree"))  # the notice was left
    assert (said.how, said.text, said.alert) == ("notice", STALE, True)

    await world.say(ZHANG, Command("checkin"))
    assert world.state(ZHANG).state == ANSWERING
    [again] = await world.say(ZHANG, Command("start", code))  # a new link, mid-form
    assert again.text.startswith("You are already enrolled in First School as Zhang San.")
    assert world.state(ZHANG).state is None


# -- the check-in -----------------------------------------------------------------------------


async def test_a_member_checks_in_from_the_menu(world: World) -> None:
    await school(world)
    first = one(await world.say(ZHANG, Text("✅ Check in")))  # the menu's label, typed back
    assert first.text.startswith("(1/5) Please share your current location.")
    assert first.ask is Ask.LOCATION and world.state(ZHANG).state == ANSWERING

    temperature = one(await world.say(ZHANG, Location(*TIANANMEN, accuracy=12.5)))
    assert temperature.text.startswith("📍 Location received: 北京市.\n\n(2/5) ")
    symptoms = one(await world.say(ZHANG, Text("36.5")))
    assert symptoms.text.startswith("(3/5) ")
    _ack, ticked = await press(world, ZHANG, symptoms, "None of these")
    _ack, exposure = await press(world, ZHANG, ticked, "Done")
    _ack, photo = await press(world, ZHANG, exposure, "No")
    _ack, summary = await press(world, ZHANG, photo, "Skip")
    assert world.state(ZHANG).state == SUMMARY and "36.5 °C" in summary.text

    retyped = one(await world.say(ZHANG, Text("36.6")))  # typed at the summary: shown again
    assert retyped.text.startswith("Please confirm or edit your answers")
    _ack, done = await press(world, ZHANG, summary, "Confirm")
    assert "2026-11-28" in done.text and world.state(ZHANG).state is None
    [stored] = await world.rows(CheckIn)
    assert stored.local_day == date(2026, 11, 28) and stored.answers["temperature"] == 36.5
    assert (stored.province, world.recorded, world.woken) == ("北京市", 1, 0)


async def test_today_then_the_button_under_it_starts_the_check_in(world: World) -> None:
    await school(world)
    for asked in (Command("today"), Text("📋 Today")):
        today = one(await world.say(ZHANG, asked))
        assert today.text == "You have not checked in today (2026-11-28) yet."
        assert today.keys() == ["go"]
    ack, first = await world.say(ZHANG, Press("go"))
    assert (ack.how, ack.alert, first.ask) == ("notice", False, Ask.LOCATION)
    said = one(await world.say(ZHANG, Press("go")))  # in the form, the start button is stale
    assert (said.how, said.text, said.alert) == ("notice", STALE, True)
    history = one(await world.say(STRANGER, Text("🗓 History")))
    assert history.text == "You are not enrolled yet. Please open your invite link first."


async def test_cancel_mid_form_records_nothing(world: World) -> None:
    await school(world)
    await world.say(ZHANG, Command("checkin"))
    await world.say(ZHANG, Location(*TIANANMEN))
    for other in ("help", "checkin", "summary", "frobnicate"):  # not taken mid-form
        busy = one(await world.say(ZHANG, Command(other)))
        assert busy.text.startswith(BUSY + "\n\n(2/5) "), other
    cancelled = one(await world.say(ZHANG, Command("cancel")))
    assert cancelled.text == "Cancelled. Nothing was recorded." and cancelled.ask is Ask.MENU
    assert world.state(ZHANG).state is None and await world.rows(CheckIn) == []
    assert one(await world.say(ZHANG, Command("cancel"))).text == "There is nothing to cancel."


async def test_a_command_on_a_photo_is_a_command_only_where_one_is_taken(world: World) -> None:
    """A channel may send a command with a picture (Telegram: its caption): outside a
    conversation, and for /cancel, it is the command; a question waiting for a photo takes
    the photo."""
    await school(world)
    on_photo = Photo("photo-1")
    world.files["photo-1"] = b"\xff\xd8\xff a photo"
    today = one(await world.say(ZHANG, Command("today", attached=on_photo)))
    assert today.text.startswith("You have not checked in today")
    assert one(await world.say(ZHANG, Command("nope", attached=on_photo))).text.startswith(
        "Send /checkin to check in"  # chatter, not "I don't know that command"
    )
    await world.say(ZHANG, Command("checkin"))
    await world.say(ZHANG, Location(*TIANANMEN))
    symptoms = one(await world.say(ZHANG, Text("36.5")))
    _ack, ticked = await press(world, ZHANG, symptoms, "None of these")
    _ack, exposure = await press(world, ZHANG, ticked, "Done")
    await press(world, ZHANG, exposure, "No")
    summary = one(await world.say(ZHANG, Command("checkin", attached=on_photo)))
    assert world.state(ZHANG).state == SUMMARY and "Photo: photo attached" in summary.text
    assert one(await world.say(ZHANG, Command("cancel", attached=on_photo))).text == (
        "Cancelled. Nothing was recorded."
    )


# -- managers ---------------------------------------------------------------------------------


async def test_a_managers_summary_and_a_forged_press(world: World) -> None:
    await school(world)
    summary = one(await world.say(MANAGER, Command("summary")))
    assert summary.text.startswith("📊 <b>College</b> — 2026-11-28")
    drill = key_of(summary, "Class 1")
    ack, shown = await world.say(MANAGER, Press(drill))
    assert (ack.how, shown.how) == ("notice", "replace") and "Class 1" in shown.text

    arts = await world.using(
        lambda repo: repo.units.require(org_id=world.org_ids["school"], name_path="Arts")
    )
    for forged in (f"nav:{arts.id}:2026-11-28:0", "nav:abc", "nav:", "org:1"):
        said = one(await world.say(MANAGER, Press(forged)))
        assert (said.how, said.text, said.alert) == ("notice", NO_LONGER_VALID, True), forged
    for nobodys in ("nav", "org", "zzz:1", "go:1", ""):  # a prefix alone is no manager's key
        said = one(await world.say(MANAGER, Press(nobodys)))
        assert (said.how, said.text, said.alert) == ("notice", STALE, True), nobodys

    assert one(await world.say(ZHANG, Command("summary"))).text == REFUSAL
    said = one(await world.say(ZHANG, Press(drill)))  # a manager's button, pressed by a member
    assert (said.text, said.alert) == (NO_LONGER_VALID, True)
    said = one(await world.say(ZHANG, Press("zzz:1")))  # nobody's
    assert (said.text, said.alert) == (STALE, True)


async def test_a_refused_managers_press_leaves_a_members_form_as_it_was(world: World) -> None:
    await school(world)
    await world.say(ZHANG, Command("checkin"))
    await world.say(ZHANG, Location(*TIANANMEN))
    said = one(await world.say(ZHANG, Press("nav:0:2026-11-28:0")))
    assert said.text == NO_LONGER_VALID and world.state(ZHANG).state == ANSWERING
    assert one(await world.say(ZHANG, Text("36.5"))).text.startswith("(3/5) ")


async def test_a_roster_is_uploaded_through_the_channels_fetch(world: World) -> None:
    await school(world)
    asked = one(await world.say(MANAGER, Command("roster")))
    assert asked.text.startswith("Send the roster as a .csv or .xlsx file")
    for other in (Text("here it comes"), Photo("p"), Command("summary")):
        said = one(await world.say(MANAGER, other))
        assert said.text == "Please send the roster as a file (.csv or .xlsx), or /cancel."
    world.files["file-1"] = b"unit,member_id,name\nCollege/Class 2,2024050,Zhao Liu\n"
    done = one(await world.say(MANAGER, Document("file-1", "roster.csv", 60)))
    assert done.text == "Roster: 1 added, 0 updated, 0 rejected."
    assert world.state(MANAGER).state is None
    assert "2024050" in {m.external_id for m in await world.rows(Member)}
    assert [e.action for e in await world.rows(AuditEntry)] == ["roster.upload"]


async def test_a_roster_the_channel_cannot_give_is_asked_for_again(world: World) -> None:
    await school(world)
    await world.say(MANAGER, Command("roster"))
    # No such file on the channel's side (a WeCom MediaId past its 3 days): fetch raises.
    said = one(await world.say(MANAGER, Document("expired", "roster.csv", 60)))
    assert said.text == "Sorry, the file could not be received. Please send it again."
    assert world.state(MANAGER).state == ROSTER_WAITING
    world.files["file-2"] = b"unit,member_id,name\nCollege/Class 2,2024051,Qian Qi\n"
    done = one(await world.say(MANAGER, Document("file-2", "roster.csv", 60)))
    assert done.text == "Roster: 1 added, 0 updated, 0 rejected."


async def test_a_roster_awaited_from_someone_no_longer_a_manager_ends(world: World) -> None:
    await school(world)
    await world.say(MANAGER, Command("roster"))

    account_id = await world.account_id_of(MANAGER)

    async def revoke(repo: Repo) -> None:  # as `daka role revoke` does
        for grant in await repo.roles.active(account_id=account_id):
            grant.revoked_at = world.clock.now()
        await repo.session.flush()

    await world.using(revoke)
    world.files["file-1"] = b"unit,member_id,name\nCollege/Class 2,2024050,Zhao Liu\n"
    said = one(await world.say(MANAGER, Document("file-1", "roster.csv", 60)))
    assert said.text == REFUSAL and world.state(MANAGER).state is None


# -- everything else --------------------------------------------------------------------------


async def test_an_unknown_command_and_chatter(world: World) -> None:
    await school(world)
    unknown = "I don't know that command. Send /help to see what I can do."
    assert one(await world.say(STRANGER, Command("frobnicate"))).text == unknown
    assert one(await world.say(STRANGER, Command(""))).text == unknown  # a lone "/"
    hello = "Hello! To start, open the invite link from your counselor or village cadre."
    assert one(await world.say(STRANGER, Text("hi"))).text == hello
    assert one(await world.say(STRANGER, Text("✅ Check in"))).text == (
        "You are not enrolled yet. Please open the invite link from your counselor first."
    )
    member = one(await world.say(ZHANG, Location(*TIANANMEN)))
    assert member.text == "Send /checkin to check in, or /help to see what I can do."
    assert member.ask is Ask.MENU


async def test_a_sticker_gets_the_way_in_or_the_question_again(world: World) -> None:
    """An input the core has no use for (a sticker): an empty Text."""
    await school(world)
    sticker = Text("")
    stranger = one(await world.say(STRANGER, sticker))
    assert stranger.text.startswith("Hello! To start, open the invite link")
    assert one(await world.say(ZHANG, sticker)).ask is Ask.MENU
    await world.say(ZHANG, Command("checkin"))
    again = one(await world.say(ZHANG, sticker))
    assert again.text.startswith("I need your location.")
    assert "(1/5) Please share your current location." in again.text
    assert "button" not in again.text  # how to send one is the channel's to say
    assert again.ask is Ask.LOCATION
    assert world.state(ZHANG).state == ANSWERING


async def test_a_state_of_an_older_release_gets_the_fallbacks(world: World) -> None:
    await school(world)
    await world.state(ZHANG).set_state("Checkin:temperature")
    assert one(await world.say(ZHANG, Command("checkin"))).text.startswith("I don't know that")
    assert one(await world.say(ZHANG, Text("36.5"))).text.startswith("Send /checkin")
    said = one(await world.say(ZHANG, Command("cancel")))
    assert said.text == "Cancelled. Nothing was recorded."
    assert one(await world.say(ZHANG, Command("checkin"))).ask is Ask.LOCATION


def test_every_command_and_key_has_one_route() -> None:
    """No member command shadows a manager's (which would skip the gate), every manager key is
    routed to the gated press handler, and a command takes one line to add."""
    assert not set(COMMANDS) & set(MANAGER_COMMANDS)
    assert not set(ANYWHERE) & (set(COMMANDS) | set(MANAGER_COMMANDS))
    for key in MANAGER_KEYS:
        assert PRESSES[key.prefix].pressed.__name__ == "manager_pressed"
        assert PRESSES[key.prefix].states is None  # a manager's button works in any state
    for name in MANAGER_COMMANDS:
        handler = command_handler(Command(name), None)
        assert handler is not None and handler.__name__ == "manager_command", name
        assert command_handler(Command(name), ANSWERING) is None
    assert command_handler(Command("cancel"), "anything") is ANYWHERE["cancel"]
    # Conversations in flight keep their states (the names aiogram's StatesGroups gave them).
    assert (ANSWERING, SUMMARY) == ("CheckInForm:answering", "CheckInForm:summary")
    with speaking("en"):
        assert common.menu_command("🗓 History") == "history"
    with speaking("zh"):
        assert common.menu_command("🗓 History") is None  # not in the person's language
