"""Where people are reached: their identities on the deployment's channels (one contact per
account and channel), and who is unreachable once a channel refuses them, on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from domain.clock import FixedClock
from domain.delivery import TELEGRAM
from storage.db import SessionFactory
from storage.models import Identity, Member
from storage.repo import Repo
from storage.repos.accounts import Contact
from tests.storage.seeding import seed_roster

WECOM = "wecom"
ROSTER = (("一班", "1", "甲"), ("一班", "2", "乙"), ("一班", "3", "丙"), ("一班", "4", "丁"))


async def seed(sessions: SessionFactory, clock: FixedClock) -> dict[str, Member]:
    """甲 on Telegram (101) and WeCom (jia, then jia2), in English; 乙 on Telegram only (102);
    丙 on WeCom only (bing); 丁 never enrols."""
    now = clock.now()
    async with sessions() as session:
        repo = Repo(session)
        _org, members = await seed_roster(
            repo, name="S", roster=ROSTER, enrolled={"1": now, "2": now}, now=now
        )
        jia = members["1"].account_id
        assert jia is not None
        for userid in ("jia", "jia2"):
            session.add(
                Identity(channel=WECOM, external_id=userid, account_id=jia, created_at=now)
            )
        account = await repo.accounts.get(account_id=jia)
        assert account is not None
        account.language = "en"
        bing = await repo.accounts.ensure(channel=WECOM, external_id="bing", now=now)
        assert bing.id is not None
        await repo.members.bind(member=members["3"], account_id=bing.id, now=now)
        await session.commit()
    return members


async def test_reach_gives_one_contact_per_account_and_served_channel(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    members = await seed(sessions, clock)
    jia, yi, bing = (members[m].account_id or 0 for m in ("1", "2", "3"))
    async with sessions() as session:
        accounts = Repo(session).accounts
        both = await accounts.reach(channels=[TELEGRAM, WECOM], account_ids=[jia, yi, bing])
        telegram = await accounts.reach(channels=[TELEGRAM], account_ids=[jia, yi, bing])
        nowhere = await accounts.reach(channels=[], account_ids=[jia, yi, bing])
        one = await accounts.contact(channel=WECOM, account_id=jia)
    assert both == {
        jia: [Contact(jia, TELEGRAM, "101", "en"), Contact(jia, WECOM, "jia", "en")],
        yi: [Contact(yi, TELEGRAM, "102", None)],
        bing: [Contact(bing, WECOM, "bing", None)],
    }
    assert telegram == {jia: both[jia][:1], yi: both[yi]}
    assert nowhere == {}
    assert one == Contact(jia, WECOM, "jia", "en")  # the first identity bound there


async def test_a_refusal_marks_unreachable_only_who_no_other_served_channel_reaches(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    members = await seed(sessions, clock)
    ids = [members[m].id or 0 for m in ("1", "2", "3")]
    async with sessions() as session:
        # Telegram refused 甲 and 乙; the sender also serves WeCom, where 甲 is.
        await Repo(session).members.mark_unreachable(
            member_ids=ids[:2], unless_on=[WECOM], now=clock.now()
        )
        # WeCom refused 丙, and the sender serves nothing else.
        await Repo(session).members.mark_unreachable(
            member_ids=ids[2:], unless_on=[], now=clock.now()
        )
        await session.commit()
        marked = {m.external_id: m.unreachable_since for m in await session.exec(select(Member))}
    assert marked == {"1": None, "2": clock.now(), "3": clock.now(), "4": None}
