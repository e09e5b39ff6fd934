"""Evidence shown to managers says how each check-in came: a member checks in on Telegram,
another on WeCom, and /member and /where name the app of each, with the note that WeCom cannot
mark forwarded content, in the manager's language."""

from __future__ import annotations

from domain.conversation.io import Command, Location, Press, Said, Text
from storage.models import CheckIn, CheckInRevision
from storage.repo import Repo
from tests.domain.conversation.enrolling import one
from tests.domain.conversation.world import World
from tests.storage.seeding import telegram_account

ZHANG, MANAGER = 501, 600
TIANANMEN = (39.9087, 116.3975)
NOTE = (
    "ℹ️ WeCom does not mark forwarded content: read a photo or location sent on WeCom as "
    "sent by the member, not as taken there and then."
)
NOTE_ZH = "ℹ️ 企业微信无法标记转发的内容"


def key_of(said: Said, label: str) -> str:
    [key] = [o.key for row in said.options for o in row if label in o.label and o.key]
    return key


async def school(world: World) -> None:
    """The location form; Zhang San (2024001) on Telegram, MANAGER manages the College, Li Si
    (2024002) enrols on WeCom as "lisi"."""
    await world.org(form="location")

    async def seed(repo: Repo) -> None:
        now, org_id = world.clock.now(), world.org_ids["school"]
        zhang = await repo.members.by_external(org_id=org_id, external_id="2024001")
        assert zhang is not None
        account = await telegram_account(repo, ZHANG, now)
        await repo.members.bind(member=zhang, account_id=account, now=now)
        college = await repo.units.require(org_id=org_id, name_path="College")
        await repo.roles.grant(
            org_id=org_id,
            account_id=await telegram_account(repo, MANAGER, now),
            unit_id=college.id,
            role="manager",
            now=now,
        )

    await world.using(seed)
    notice = one(await world.say_on("wecom", "lisi", Command("start", await world.invite())))
    await world.say_on("wecom", "lisi", Press(key_of(notice, "I agree")))
    await world.say_on("wecom", "lisi", Text("2024002"))
    await world.say_on("wecom", "lisi", Text("Li Si"))


async def test_managers_see_which_app_each_check_in_came_from(world: World) -> None:
    await school(world)
    await world.say(ZHANG, Command("checkin"))
    summary = one(await world.say(ZHANG, Location(*TIANANMEN)))
    await world.say(ZHANG, Press(key_of(summary, "Confirm")))
    await world.say_on("wecom", "lisi", Command("checkin"))
    summary = one(await world.say_on("wecom", "lisi", Location(*TIANANMEN)))
    await world.say_on("wecom", "lisi", Press(key_of(summary, "Confirm")))
    assert sorted(c.channel or "" for c in await world.rows(CheckIn)) == ["telegram", "wecom"]
    assert sorted(r.channel or "" for r in await world.rows(CheckInRevision)) == [
        "telegram",
        "wecom",
    ]

    li = one(await world.say(MANAGER, Command("member", "2024002"))).text.splitlines()
    assert li[1] == "✅ 2026-11-28 北京市 · via WeCom"
    assert li[-1] == NOTE
    zhang = one(await world.say(MANAGER, Command("member", "2024001"))).text
    assert "✅ 2026-11-28 北京市 · via Telegram" in zhang and "WeCom" not in zhang

    where = one(await world.say(MANAGER, Command("where"))).text
    assert "• 北京市: 2" in where
    assert "Sent from: Telegram 1, WeCom 1" in where and where.endswith(NOTE)

    world.speaks(MANAGER, "zh")
    li_zh = one(await world.say(MANAGER, Command("member", "2024002"))).text
    assert "✅ 2026-11-28 北京市 · 经由企业微信" in li_zh and NOTE_ZH in li_zh
    where_zh = one(await world.say(MANAGER, Command("where"))).text
    assert "提交渠道：Telegram 1, 企业微信 1" in where_zh and NOTE_ZH in where_zh


async def test_check_ins_from_before_the_channel_was_kept_name_no_app(world: World) -> None:
    await school(world)
    await world.say(ZHANG, Command("checkin"))
    summary = one(await world.say(ZHANG, Location(*TIANANMEN)))
    await world.say(ZHANG, Press(key_of(summary, "Confirm")))

    async def forget(repo: Repo) -> None:
        for row in await world.rows(CheckIn):
            row.channel = None
            repo.session.add(row)

    await world.using(forget)
    zhang = one(await world.say(MANAGER, Command("member", "2024001"))).text
    assert "✅ 2026-11-28 北京市\n" in zhang and "via" not in zhang
    where = one(await world.say(MANAGER, Command("where"))).text
    assert "Sent from" not in where and "WeCom" not in where
