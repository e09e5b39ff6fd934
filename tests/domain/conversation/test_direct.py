"""Enrolment without an invite (no channel, no HTTP): an organisation whose WeCom user ids are
its member ids binds someone on first contact, once they agree, and asks no id or name; nobody
else is bound, and nothing is said about anybody else's roster row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import col, delete

from domain.conversation import direct, enrolment
from domain.conversation.enrolment import CONSENT, ConsentKey
from domain.conversation.io import Ask, CollectingOut, MemoryState, Person, Said
from domain.conversation.turn import Turn, load_visitors
from domain.i18n import create_translator
from storage.models import Account, Consent, EnrolAttempt, Identity, Member, Organisation
from storage.repo import Repo
from tests.domain.conversation.world import World, locale_of

WECOM = "wecom"


def state(world: World, userid: str) -> MemoryState:
    return world.states.setdefault(hash(userid), MemoryState())


async def turn(
    world: World, userid: str, handler: Callable[..., Awaitable[Any]], *args: Any
) -> list[Said]:
    """`handler(turn, *args)` as one WeCom event of `userid`: WeCom gives no language, so
    someone new is answered in the app's organisation's (the world's are English)."""
    out = CollectingOut()
    i18n = create_translator()
    async with world.sessions() as session:
        repo = Repo(session)
        visitor = (await load_visitors(repo, channel=WECOM, external_ids=[userid]))[userid]
        person = Person(WECOM, userid)
        with i18n.context(), i18n.use_locale(locale_of(visitor, "en")):
            current = Turn(person, visitor, repo, world.clock, state(world, userid), out)
            await handler(current, *args)
        await session.commit()
    return out.said


async def first_contact(world: World, userid: str, org: Organisation) -> list[Said]:
    return await turn(world, userid, direct.offer_direct, org)


def press(org: Organisation, accept: bool = True) -> str:
    return ConsentKey(accept=accept, code=f"@{org.id}").pack()


async def test_the_member_is_bound_on_first_contact_once_they_agree(world: World) -> None:
    org = await world.org(roster=[("College/Class 1", "ZhangSan", "Zhang San")])
    [notice] = await first_contact(world, "zhangsan", org)
    assert "your WeCom user id, to send you reminders" in notice.text
    assert "Telegram" not in notice.text
    assert state(world, "zhangsan").state == CONSENT
    assert notice.keys() == [press(org), press(org, accept=False)]

    said = await turn(world, "zhangsan", enrolment.on_consent, press(org))
    assert [s.how for s in said] == ["notice", "replace", "say"]
    assert said[2].text.startswith("Welcome, Zhang San!") and said[2].ask is Ask.MENU
    [member] = await world.rows(Member)
    assert member.account_id is not None and member.enrolled_at is not None
    [consent] = await world.rows(Consent)
    assert consent.accepted and consent.account_id == member.account_id
    assert [a.outcome for a in await world.rows(EnrolAttempt)] == ["enrolled"]
    assert state(world, "zhangsan").state is None


async def test_declining_binds_nobody(world: World) -> None:
    org = await world.org(roster=[("College/Class 1", "lisi", "Li Si")])
    await first_contact(world, "lisi", org)
    said = await turn(world, "lisi", enrolment.on_consent, press(org, accept=False))
    assert "write to me again" in said[-1].text
    [member] = await world.rows(Member)
    assert member.account_id is None
    [consent] = await world.rows(Consent)
    assert not consent.accepted


async def test_someone_not_on_the_roster_is_told_and_nothing_is_kept(world: World) -> None:
    org = await world.org()
    [said] = await first_contact(world, "stranger", org)
    assert "not on the roster of First School" in said.text
    assert state(world, "stranger").state is None
    assert await world.rows(Consent) == []
    assert await world.rows(Account) == []


async def test_a_roster_row_bound_to_another_account_is_refused(world: World) -> None:
    org = await world.org(roster=[("College/Class 1", "wangwu", "Wang Wu")])
    await first_contact(world, "wangwu", org)
    await turn(world, "wangwu", enrolment.on_consent, press(org))

    async def bind_elsewhere(repo: Repo) -> None:
        member = await repo.members.by_external(org_id=org.id or 0, external_id="wangwu")
        other = await repo.accounts.ensure(
            channel="telegram", external_id="42", now=world.clock.now()
        )
        assert member is not None
        member.account_id = other.id

    await world.using(bind_elsewhere)
    world.states.clear()
    async with world.sessions() as session:  # a fresh WeCom identity for the same userid
        await session.exec(delete(Identity).where(col(Identity.channel) == WECOM))
        await session.commit()
    [said] = await first_contact(world, "wangwu", org)
    assert "already linked to another account" in said.text


async def test_anything_but_the_answer_shows_the_notice_again(world: World) -> None:
    org = await world.org(roster=[("College/Class 1", "zhaoliu", "Zhao Liu")])
    await first_contact(world, "zhaoliu", org)
    said = await turn(world, "zhaoliu", enrolment.on_consent_pending)
    assert said[0].text == "Please answer the consent notice first:"
    assert said[1].keys() == [press(org), press(org, accept=False)]
    forged = ConsentKey(accept=True, code=f"@{(org.id or 0) + 1}").pack()
    [stale] = await turn(world, "zhaoliu", enrolment.on_consent, forged)
    assert stale.how == "notice" and stale.alert
    [member] = await world.rows(Member)
    assert member.account_id is None
