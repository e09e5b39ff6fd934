"""Everybody's commands in the core: /help, /cancel, /language, and the fallbacks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from domain.conversation import common, enrolment
from domain.conversation.common import LanguageKey, member_and_org
from domain.conversation.enrolment import CONSENT, MEMBER_ID, NAME, ConsentKey
from domain.conversation.io import Ask, Text
from domain.conversation.turn import Visitor
from domain.delivery import TELEGRAM
from storage.models import Account
from storage.repo import Repo
from tests.domain.conversation.enrolling import one
from tests.domain.conversation.world import World, load_visitor
from tests.storage.seeding import telegram_account

STRANGER, MEMBER, MANAGER = 501, 502, 600
STALE = "This button has expired. Send /checkin to start again."


async def enrolled(world: World) -> None:
    """MEMBER is Li Si of the school; MANAGER manages its College."""
    await world.org()

    async def seed(repo: Repo) -> None:
        member = await repo.members.by_external(
            org_id=world.org_ids["school"], external_id="2024002"
        )
        assert member is not None
        now = world.clock.now()
        await repo.members.bind(
            member=member, account_id=await telegram_account(repo, MEMBER, now), now=now
        )
        college = await repo.units.require(org_id=world.org_ids["school"], name_path="College")
        await repo.roles.grant(
            org_id=world.org_ids["school"],
            account_id=await telegram_account(repo, MANAGER, now),
            unit_id=college.id,
            role="manager",
            now=world.clock.now(),
        )

    await world.using(seed)


def test_the_language_key_keeps_its_telegram_wire_format() -> None:
    from handlers.telegram.keyboards import LanguageCb

    assert LanguageKey(language="zh").pack() == LanguageCb(language="zh").pack() == "lang:zh"
    assert list(LanguageKey.model_fields) == list(LanguageCb.model_fields)


async def test_help_fits_who_asks(world: World) -> None:
    await enrolled(world)
    stranger = one(await world.turn(STRANGER, common.on_help))
    assert "/checkin" in stranger.text and "You are not enrolled yet" in stranger.text
    assert "/summary" not in stranger.text
    member = one(await world.turn(MEMBER, common.on_help))
    assert "/mydata" in member.text and "not enrolled" not in member.text
    assert "/summary" not in member.text
    manager = one(await world.turn(MANAGER, common.on_help))
    assert "/summary [date]" in manager.text and "/roster" in manager.text
    assert "not enrolled" not in manager.text


async def test_cancel_with_nothing_under_way(world: World) -> None:
    said = one(await world.turn(STRANGER, common.on_cancel))
    assert said.text == "There is nothing to cancel." and said.ask is None


async def test_cancel_leaves_each_step_of_enrolment(world: World) -> None:
    await world.org()
    code = await world.invite()
    press = ConsentKey(accept=True, code=code).pack()
    steps: list[tuple[str, list[tuple[Callable[..., Awaitable[Any]], object]]]] = [
        (CONSENT, []),
        (MEMBER_ID, [(enrolment.on_consent, press)]),
        (NAME, [(enrolment.on_consent, press), (enrolment.on_member_id, Text("2024001"))]),
    ]
    for expected, moves in steps:
        await world.turn(STRANGER, enrolment.on_invite, code)
        for handler, argument in moves:
            await world.turn(STRANGER, handler, argument)
        assert world.state(STRANGER).state == expected
        said = one(await world.turn(STRANGER, common.on_cancel))
        assert said.text == "Cancelled. Nothing was recorded."
        assert said.ask is Ask.CLEAR  # a newcomer has no menu; any picker goes
        assert world.state(STRANGER).state is None and world.state(STRANGER).data == {}
    assert (await world.member("2024001")).account_id is None


async def test_cancel_gives_a_member_the_menu_back(world: World) -> None:
    await enrolled(world)
    state = world.state(MEMBER)
    await state.set_state("CheckInForm:answering")
    await state.update_data(draft="d1", answers={"temperature": 36.6})
    said = one(await world.turn(MEMBER, common.on_cancel))
    assert said.text == "Cancelled. Nothing was recorded." and said.ask is Ask.MENU
    assert state.state is None and state.data == {}


async def test_a_language_is_chosen_and_kept(world: World) -> None:
    await enrolled(world)
    menu = one(await world.turn(MEMBER, common.on_language))
    assert menu.text == "Choose your language:"
    assert menu.labels() == ["中文", "English"] and menu.keys() == ["lang:zh", "lang:en"]

    ack, done, help_text = await world.turn(MEMBER, common.on_language_chosen, "lang:zh")
    assert (ack.how, ack.text) == ("notice", "")
    assert (done.how, done.text) == ("replace", "已切换为中文。")
    assert help_text.how == "say" and "打卡" in help_text.text and help_text.ask is Ask.MENU
    accounts = {a.id: a.language for a in await world.rows(Account)}
    assert accounts == {  # MEMBER's and MANAGER's: choosing a language made no other
        await world.account_id_of(MEMBER): "zh",
        await world.account_id_of(MANAGER): None,
    }
    later = one(await world.turn(MEMBER, common.on_unknown_command))
    assert "/help" in later.text and "command" not in later.text  # in Chinese from now on

    ack, done, help_text = await world.turn(STRANGER, common.on_language_chosen, "lang:en")
    assert done.text == "Language set to English."
    assert help_text.ask is None and "You are not enrolled yet" in help_text.text


async def test_forged_and_unknown_language_presses(world: World) -> None:
    for forged in ("lang", "lang:zh:x", "language:zh", "consent:1:abc"):
        said = one(await world.turn(STRANGER, common.on_language_chosen, forged))
        assert (said.how, said.text, said.alert) == ("notice", STALE, True), forged
    for unknown in ("lang:fr", "lang:", "lang:zh_Hans", "lang:" + "x" * 80):
        said = one(await world.turn(STRANGER, common.on_language_chosen, unknown))
        assert (said.how, said.text, said.alert) == ("notice", "This button has expired.", False)
    assert await world.rows(Account) == []


async def test_a_press_nobody_claims_is_stale(world: World) -> None:
    said = one(await world.turn(STRANGER, common.on_stale_press))
    assert (said.how, said.text, said.alert) == ("notice", STALE, True)


async def test_unknown_commands_and_chatter_point_the_way(world: World) -> None:
    await enrolled(world)
    unknown = one(await world.turn(MEMBER, common.on_unknown_command))
    assert unknown.text == "I don't know that command. Send /help to see what I can do."
    chatter = one(await world.turn(MEMBER, common.on_anything_else))
    assert "/checkin" in chatter.text and chatter.ask is Ask.MENU
    stranger = one(await world.turn(STRANGER, common.on_anything_else))
    assert "open the invite link" in stranger.text and stranger.ask is None
    manager = one(await world.turn(MANAGER, common.on_anything_else))
    assert "open the invite link" in manager.text  # no menu: nothing to check in to


async def test_the_enrolment_used_for_checking_in(world: World) -> None:
    await enrolled(world)
    nobody = Visitor(channel=TELEGRAM, external_id=str(STRANGER), account=None)
    assert await world.using(lambda repo: member_and_org(repo, nobody)) is None

    async def found(repo: Repo, *, prefetched: bool) -> tuple[str, str] | None:
        visitor = await load_visitor(repo, MEMBER)
        read = dict(visitor.orgs)
        visitor.org = None  # another organisation's first: its own among those read with them
        if not prefetched:
            visitor.orgs.clear()  # not read with them: looked up
        pair = await member_and_org(repo, visitor)
        if pair is None:
            return None
        assert (pair[1] is read[pair[0].org_id]) is prefetched
        return pair[0].external_id, pair[1].slug

    assert await world.using(lambda repo: found(repo, prefetched=True)) == ("2024002", "school")
    assert await world.using(lambda repo: found(repo, prefetched=False)) == ("2024002", "school")
