"""Enrolment in the core: the refusals after consent (wrong id or name, lock-out, an id taken,
another class, an invite gone meanwhile) and the insistence on text."""

from __future__ import annotations

from datetime import timedelta

from domain.conversation import enrolment
from domain.conversation.enrolment import MEMBER_ID, NAME
from domain.conversation.io import Text
from domain.delivery import TELEGRAM
from storage.models import Account, AuditEntry, Consent, EnrolAttempt
from storage.repo import Repo
from tests.domain.conversation.enrolling import accept, consent_notice, enrol, one
from tests.domain.conversation.world import World

STRANGER, OTHER = 501, 502


async def test_a_wrong_name_is_refused_without_revealing_the_right_one(world: World) -> None:
    await world.org()
    code = await world.invite()
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))
    refusal = one(await world.turn(STRANGER, enrolment.on_name, Text("Li Si")))
    assert "do not match our roster" in refusal.text and "Zhang" not in refusal.text
    assert world.state(STRANGER).state == MEMBER_ID  # asks again from the id
    unknown_id = one(await world.turn(STRANGER, enrolment.on_member_id, Text("1999999")))
    assert "full name" in unknown_id.text  # an unknown id is not told apart either
    refusal = one(await world.turn(STRANGER, enrolment.on_name, Text("Li Si")))
    assert "do not match our roster" in refusal.text
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024002"))
    welcome = one(await world.turn(STRANGER, enrolment.on_name, Text("Li Si")))
    assert "Welcome, Li Si" in welcome.text
    outcomes = [a.outcome for a in await world.rows(EnrolAttempt)]
    assert outcomes == ["mismatch", "mismatch", "enrolled"]
    [account] = await world.rows(Account)
    assert account.failed_attempts == 0 and account.locked_until is None


async def test_repeated_wrong_answers_lock_enrolment_for_a_while(world: World) -> None:
    await world.org()
    code = await world.invite()
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    for attempt in range(5):
        await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))
        answer = one(await world.turn(STRANGER, enrolment.on_name, Text("not me")))
        if attempt < 4:
            assert "do not match" in answer.text
    assert answer.text == "Too many wrong answers. Please try again after 09:30."
    assert world.state(STRANGER).state is None
    locked = one(await world.turn(STRANGER, enrolment.on_invite, code))
    assert "try again after 09:30" in locked.text and locked.options == []
    assert world.state(STRANGER).state is None
    world.clock.advance(timedelta(minutes=31))
    welcome = await enrol(world, STRANGER, "2024001", "Zhang San", code)
    assert "Welcome" in welcome.text


async def test_a_lock_that_starts_mid_conversation_stops_the_name(world: World) -> None:
    """Locked from another chat of the same account while this one waited for the name."""
    await world.org()
    code = await world.invite()
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))

    async def lock(repo: Repo) -> None:
        account = await repo.accounts.ensure(
            channel=TELEGRAM, external_id=str(STRANGER), now=world.clock.now()
        )
        account.locked_until = world.clock.now() + timedelta(minutes=10)

    await world.using(lock)
    locked = one(await world.turn(STRANGER, enrolment.on_name, Text("Zhang San")))
    assert "09:10" in locked.text
    assert world.state(STRANGER).state is None
    assert (await world.member("2024001")).account_id is None


async def test_an_id_bound_to_another_account_is_refused_and_recorded(world: World) -> None:
    await world.org()
    code = await world.invite()
    await enrol(world, OTHER, "2024001", "Zhang San", code)
    refusal = await enrol(world, STRANGER, "2024001", "Zhang San", code)
    assert "already linked to another Telegram account" in refusal.text
    assert world.state(STRANGER).state is None
    other, stranger = await world.account_id_of(OTHER), await world.account_id_of(STRANGER)
    assert (await world.member("2024001")).account_id == other
    attempts = [(a.account_id, a.outcome) for a in await world.rows(EnrolAttempt)]
    assert attempts == [(other, "enrolled"), (stranger, "taken")]
    [audit] = await world.rows(AuditEntry)
    assert (audit.action, audit.actor, audit.subject) == (
        "enrol.refused.taken",
        f"telegram:{STRANGER}",
        "2024001",
    )


async def test_an_invite_for_one_class_does_not_enrol_another_class(world: World) -> None:
    await world.org()
    code = await world.invite(unit="College/Class 1")
    refusal = await enrol(world, STRANGER, "2024003", "Wang Wu", code)  # Class 2
    assert "do not match" in refusal.text
    assert (await world.member("2024003")).account_id is None
    welcome = await enrol(world, OTHER, "2024002", "Li Si", code)
    assert "Welcome" in welcome.text


async def test_an_invite_used_up_while_the_name_was_awaited(world: World) -> None:
    await world.org()
    code = await world.invite(uses=1)
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))
    await enrol(world, OTHER, "2024002", "Li Si", code)  # takes the one use
    late = one(await world.turn(STRANGER, enrolment.on_name, Text("Zhang San")))
    assert "as many times as allowed" in late.text
    assert world.state(STRANGER).state is None
    assert (await world.member("2024001")).account_id is None


async def test_an_invite_that_expires_mid_conversation_ends_it(world: World) -> None:
    await world.org()
    code = await world.invite(days=1)
    await consent_notice(world, STRANGER, code)
    world.clock.advance(timedelta(days=2))
    said = await accept(world, STRANGER, code)
    assert [s.how for s in said] == ["notice", "say"]
    assert "has expired" in said[1].text
    assert world.state(STRANGER).state is None
    assert await world.rows(Consent) == []

    code = await world.invite(days=1)
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))
    world.clock.advance(timedelta(days=2))
    late = one(await world.turn(STRANGER, enrolment.on_name, Text("Zhang San")))
    assert "has expired" in late.text and world.state(STRANGER).state is None


async def test_the_id_and_the_name_must_be_text(world: World) -> None:
    await world.org()
    code = await world.invite()
    await consent_notice(world, STRANGER, code)
    await accept(world, STRANGER, code)
    sticker = one(await world.turn(STRANGER, enrolment.on_enrol_other))
    assert sticker.text == "I need your member id as text. Send it, or /cancel to stop enrolling."
    command = one(await world.turn(STRANGER, enrolment.on_member_id, Text("/checkin")))
    assert command.text == sticker.text
    for blank in ("   ", "1" * 65):
        again = one(await world.turn(STRANGER, enrolment.on_member_id, Text(blank)))
        assert "as text, for example" in again.text
    assert world.state(STRANGER).state == MEMBER_ID
    await world.turn(STRANGER, enrolment.on_member_id, Text("2024001"))
    photo = one(await world.turn(STRANGER, enrolment.on_enrol_other))
    assert photo.text == "I need your full name as text. Send it, or /cancel to stop."
    command = one(await world.turn(STRANGER, enrolment.on_name, Text("/today")))
    assert command.text == photo.text
    assert world.state(STRANGER).state == NAME
    assert await world.rows(EnrolAttempt) == []
