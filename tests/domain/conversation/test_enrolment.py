"""Enrolment in the core: invite, consent, member id and name, every refusal (no channel)."""

from __future__ import annotations

from datetime import timedelta

from domain.conversation import enrolment
from domain.conversation.enrolment import CONSENT, MEMBER_ID, NAME, ConsentKey
from domain.conversation.io import Ask, Text
from storage.models import Account, AuditEntry, Consent, EnrolAttempt, RoleGrant
from storage.repo import Repo
from tests.domain.conversation.enrolling import accept, consent_notice, enrol, one
from tests.domain.conversation.world import World

STRANGER, OTHER = 501, 502
STALE = "This button has expired. Send /checkin to start again."


def test_the_states_and_keys_keep_their_telegram_names() -> None:
    """Enrolments in flight (the states aiogram's `Enrol` StatesGroup stored) and buttons
    already in chats survive the move to the core."""
    from handlers.telegram.keyboards import ConsentCb

    assert (CONSENT, MEMBER_ID, NAME) == ("Enrol:consent", "Enrol:member_id", "Enrol:name")
    assert ConsentKey(accept=True, code="abc_DEF-123").pack() == "consent:1:abc_DEF-123"
    assert ConsentKey(accept=False, code="x").pack() == "consent:0:x"
    assert ConsentKey.unpack("consent:1:abc") == ConsentKey(accept=True, code="abc")
    assert list(ConsentCb.model_fields) == list(ConsentKey.model_fields)  # the router's filter
    for agreed in (True, False):
        key = ConsentKey(accept=agreed, code="abc_DEF-123")
        assert ConsentCb(accept=agreed, code="abc_DEF-123").pack() == key.pack()


async def test_a_newcomer_enrols_with_an_invite(world: World) -> None:
    await world.org()
    code = await world.invite()

    notice = await consent_notice(world, STRANGER, f"  {code} ")
    assert "First School" in notice.text and "What we collect" in notice.text
    assert "your member id and name" in notice.text and "Who sees it" in notice.text
    assert notice.labels() == ["✅ I agree", "❌ I decline"]
    assert notice.keys() == [f"consent:1:{code}", f"consent:0:{code}"]
    assert world.state(STRANGER).data == {"code": code}

    ack, kept, ask_id = await accept(world, STRANGER, code)
    assert (ack.how, ack.text, ack.alert) == ("notice", "", False)
    assert kept.how == "replace" and kept.text == notice.text and kept.options == []
    assert "send your member id" in ask_id.text and ask_id.ask is Ask.CLEAR
    assert world.state(STRANGER).state == MEMBER_ID

    ask_name = one(await world.turn(STRANGER, enrolment.on_member_id, Text("2024 001")))
    assert "full name" in ask_name.text
    assert world.state(STRANGER).state == NAME
    assert world.state(STRANGER).data["member_id"] == "2024001"

    welcome = one(await world.turn(STRANGER, enrolment.on_name, Text("zhang  SAN")))
    assert "Welcome, Zhang San!" in welcome.text and "First School" in welcome.text
    assert welcome.ask is Ask.MENU
    assert world.state(STRANGER).state is None and world.state(STRANGER).data == {}

    member = await world.member("2024001")
    stranger = await world.account_id_of(STRANGER)
    assert member.account_id == stranger and member.enrolled_at == world.clock.now()
    [consent] = await world.rows(Consent)
    assert (consent.account_id, consent.accepted, consent.version) == (stranger, True, 2)
    assert [a.outcome for a in await world.rows(EnrolAttempt)] == ["enrolled"]
    [invite] = await world.using(lambda repo: repo.invites.of_org(org_id=member.org_id))
    assert invite.uses == 1


async def test_each_kind_of_bad_invite_gets_its_own_answer(world: World) -> None:
    await world.org()
    expired = await world.invite(days=1)
    revoked = await world.invite()
    once = await world.invite(uses=1)

    async def revoke(repo: Repo) -> None:
        await repo.invites.revoke(code=revoked, now=world.clock.now())

    await world.using(revoke)
    await enrol(world, OTHER, "2024002", "Li Si", once)
    world.clock.advance(timedelta(days=2))
    answers = {
        kind: one(await world.turn(STRANGER, enrolment.on_invite, code)).text
        for kind, code in (
            ("malformed", "hello"),
            ("unknown", "x" * 16),
            ("expired", expired),
            ("revoked", revoked),
            ("used up", once),
        )
    }
    assert "not a valid invite" in answers["malformed"]
    assert "does not exist" in answers["unknown"]
    assert "has expired" in answers["expired"]
    assert "withdrawn" in answers["revoked"]
    assert "as many times as allowed" in answers["used up"]
    assert world.state(STRANGER).state is None


async def test_declining_consent_stores_nothing_but_the_refusal(world: World) -> None:
    await world.org()
    code = await world.invite()
    await consent_notice(world, STRANGER, code)
    said, role = await world.run(
        STRANGER, enrolment.on_consent, ConsentKey(accept=False, code=code).pack()
    )
    assert role is None
    assert [s.how for s in said] == ["notice", "replace", "say"]
    assert "Nothing about you has been stored" in said[2].text
    assert world.state(STRANGER).state is None
    stranger = await world.account_id_of(STRANGER)
    assert [(c.account_id, c.accepted) for c in await world.rows(Consent)] == [(stranger, False)]
    assert (await world.member("2024001")).account_id is None


async def test_a_manager_invite_grants_the_role_over_its_unit(world: World) -> None:
    await world.org()
    code = await world.invite(role="manager", unit="College/Class 1", uses=1)
    notice = await consent_notice(world, 600, code)
    assert "for the audit trail" in notice.text and "member id" not in notice.text
    said, role = await world.run(
        600, enrolment.on_consent, ConsentKey(accept=True, code=code).pack()
    )
    assert role == "manager"
    assert said[-1].text == "You are now a manager of College/Class 1."
    assert world.state(600).state is None
    unit = await world.using(
        lambda repo: repo.units.require(
            org_id=world.org_ids["school"], name_path="College/Class 1"
        )
    )
    grants = [(g.account_id, g.role, g.unit_id) for g in await world.rows(RoleGrant)]
    assert grants == [(await world.account_id_of(600), "manager", unit.id)]
    [audit] = await world.rows(AuditEntry)
    assert (audit.action, audit.subject) == ("role.grant.manager", "College/Class 1")
    assert audit.detail == f"invite {code[:6]}…"

    refused = one(await world.turn(601, enrolment.on_invite, code))  # no notice any more
    assert "as many times as allowed" in refused.text and world.state(601).state is None


async def test_a_role_invite_used_up_while_its_notice_was_open(world: World) -> None:
    await world.org()
    code = await world.invite(role="manager", uses=1)
    await consent_notice(world, 600, code)
    await consent_notice(world, 601, code)
    await world.run(600, enrolment.on_consent, ConsentKey(accept=True, code=code).pack())
    said, role = await world.run(
        601, enrolment.on_consent, ConsentKey(accept=True, code=code).pack()
    )
    assert role is None and "as many times as allowed" in said[-1].text
    assert world.state(601).state is None
    assert len(await world.rows(RoleGrant)) == 1


async def test_an_administrator_invite_covers_the_whole_organisation(world: World) -> None:
    await world.org()
    code = await world.invite(role="admin")
    await consent_notice(world, 602, code)
    said, role = await world.run(
        602, enrolment.on_consent, ConsentKey(accept=True, code=code).pack()
    )
    assert role == "admin"
    assert said[-1].text == "You are now an administrator of the whole organisation."
    [grant] = await world.rows(RoleGrant)
    assert (grant.role, grant.unit_id) == ("admin", None)
    welcome = one(await world.turn(602, enrolment.on_start))
    assert "Send /help" in welcome.text and welcome.ask is None


async def test_an_enrolled_member_opening_the_link_again_is_told_so(world: World) -> None:
    await world.org()
    code = await world.invite()
    await enrol(world, STRANGER, "2024001", "Zhang San", code)
    again = one(await world.turn(STRANGER, enrolment.on_invite, code))
    assert "already enrolled in First School as Zhang San" in again.text
    assert again.ask is Ask.MENU and world.state(STRANGER).state is None
    manager_code = await world.invite(role="manager")
    notice = await consent_notice(world, STRANGER, manager_code)  # a role is something else
    assert "audit trail" in notice.text


async def test_the_organisations_language_when_the_channel_gives_none_we_speak(
    world: World,
) -> None:
    await world.org(language="zh", name="第一中学")
    code = await world.invite()
    world.speaks(STRANGER, None)
    notice = await consent_notice(world, STRANGER, code)
    assert "第一中学" in notice.text and "收集" in notice.text
    assert notice.labels() == ["✅ 同意", "❌ 不同意"]
    [account] = await world.rows(Account)
    assert account.language == "zh"
    world.speaks(OTHER, "en")
    english = await consent_notice(world, OTHER, code)
    assert "What we collect" in english.text
    accounts = {a.id: a.language for a in await world.rows(Account)}
    assert accounts[await world.account_id_of(OTHER)] is None  # their channel's will do


async def test_forged_and_stale_consent_presses(world: World) -> None:
    await world.org()
    code = await world.invite()
    other_code = await world.invite()
    await consent_notice(world, STRANGER, code)
    for forged in ("consent", "consent:maybe:" + code, f"consent:1:{code}:x", "consent:1"):
        said, role = await world.run(STRANGER, enrolment.on_consent, forged)
        assert role is None
        assert [(s.how, s.text, s.alert) for s in said] == [("notice", STALE, True)], forged
    for other in (other_code, "x" * 16):  # another invite's notice: not this conversation's
        said, _role = await world.run(
            STRANGER, enrolment.on_consent, ConsentKey(accept=True, code=other).pack()
        )
        assert [(s.how, s.text, s.alert) for s in said] == [
            ("notice", "This button has expired.", True)
        ]
    assert world.state(STRANGER).state == CONSENT
    assert await world.rows(Consent) == []


async def test_anything_but_a_press_shows_the_notice_again(world: World) -> None:
    await world.org()
    code = await world.invite()
    notice = await consent_notice(world, STRANGER, code)
    first, again = await world.turn(STRANGER, enrolment.on_consent_pending)
    assert first.text == "Please answer the consent notice first:"
    assert again.text == notice.text and again.keys() == notice.keys()
    assert world.state(STRANGER).state == CONSENT

    world.state(STRANGER).data["code"] = "x" * 16  # the invite is gone
    gone = one(await world.turn(STRANGER, enrolment.on_consent_pending))
    assert "does not exist" in gone.text and world.state(STRANGER).state is None


async def test_start_without_a_code_fits_who_is_writing(world: World) -> None:
    await world.org()
    stranger = one(await world.turn(STRANGER, enrolment.on_start))
    assert "open the invite link" in stranger.text and stranger.ask is None
    await enrol(world, OTHER, "2024002", "Li Si", await world.invite())
    member = one(await world.turn(OTHER, enrolment.on_start))
    assert member.text == "Welcome back, Li Si! Send /checkin to check in for today."
    assert member.ask is Ask.MENU


async def test_names_are_escaped_in_the_markup(world: World) -> None:
    await world.org(name="A&B <School>", roster=[("U", "7", "<b>Bob</b>")])
    code = await world.invite()
    notice = await consent_notice(world, STRANGER, code)
    assert "A&amp;B &lt;School&gt;" in notice.text
    welcome = await enrol(world, STRANGER, "7", "<b>Bob</b>", code)
    assert "&lt;b&gt;Bob&lt;/b&gt;" in welcome.text and "<b>Bob" not in welcome.text
