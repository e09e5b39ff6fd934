"""The managers' core: whose scope a turn runs in, what someone without one is told, the choice
of organisation, and the keys of the managers' buttons (packed as the aiogram classes they
replace; forged, stale and out-of-scope ones refused with one answer, reading nothing)."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from aiogram.filters.callback_data import CallbackData
from pydantic import Field
from sqlmodel import select

from domain.conversation import managers
from domain.conversation.admin import ROSTER_WAITING
from domain.conversation.drafts import StartCheckInKey
from domain.conversation.io import Command, Press
from domain.conversation.keys import BadKey
from domain.conversation.manager_keys import (
    ListKey,
    NavKey,
    NudgeKey,
    OrgKey,
    ScheduleKey,
)
from domain.conversation.turn import Turn
from handlers.telegram.keyboards import StartCheckInCb
from storage.models import Outbox
from storage.repo import Repo
from storage.scope import MAX_ROW_ID, Scope
from tests.domain.conversation.managers.managers_world import (
    ADMIN,
    CLASS_ONE,
    ISO,
    LI,
    NO_LONGER_VALID,
    REFUSAL,
    World,
)

VISITOR_READS = 3  # account, enrolments, roles (handlers.telegram.middlewares.load_visitors)

RowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]
Page = Annotated[int, Field(ge=0, le=100_000)]
Day = Annotated[str, Field(min_length=10, max_length=10)]


class OldNav(CallbackData, prefix="nav"):
    """The aiogram classes of the buttons already in chats, as they were."""

    unit: RowId
    day: Day
    page: Page = 0


class OldList(CallbackData, prefix="lst"):
    kind: Literal["missing", "abnormal"]
    unit: RowId
    day: Day
    page: Page = 0


class OldNudge(CallbackData, prefix="nud"):
    member: RowId
    day: Day


class OldOrg(CallbackData, prefix="org"):
    org: RowId


class OldSchedule(CallbackData, prefix="sch"):
    unit: RowId
    put: bool = False


def test_keys_pack_as_the_buttons_already_in_chats() -> None:
    pairs = [
        (NavKey(unit=5, day=ISO, page=2), OldNav(unit=5, day=ISO, page=2)),
        (NavKey(unit=0, day=ISO), OldNav(unit=0, day=ISO)),
        (ListKey(kind="abnormal", unit=7, day=ISO), OldList(kind="abnormal", unit=7, day=ISO)),
        (NudgeKey(member=MAX_ROW_ID, day=ISO), OldNudge(member=MAX_ROW_ID, day=ISO)),
        (OrgKey(org=3), OldOrg(org=3)),
        (ScheduleKey(unit=4, put=True), OldSchedule(unit=4, put=True)),
        (ScheduleKey(unit=4), OldSchedule(unit=4)),
        (StartCheckInKey(), StartCheckInCb()),
    ]
    for key, old in pairs:
        assert key.pack() == old.pack()
        assert type(key).unpack(old.pack()) == key


@pytest.mark.parametrize(
    "data",
    [
        "nav:2147483648:2026-11-28:0",
        "nav:-1:2026-11-28:0",
        "nav:0:2026-11-28:100001",
        "nav:0:x:0",
        "nav:0:2026-11-28:0:extra",
        "nav:",
        "lst:secrets:0:2026-11-28:0",
        "nud:99999999999999999999:2026-11-28",
        "org:x",
        "sch:1:2",
    ],
)
def test_keys_out_of_bounds_do_not_unpack(data: str) -> None:
    with pytest.raises(BadKey):
        managers.manager_key(Press(data))


def test_a_key_of_another_part_of_the_core_is_none_of_the_managers() -> None:
    assert managers.manager_key(Press("ans:d:q:v")) is None
    assert managers.manager_key(Press("navigate")) is None


def test_the_managers_states_keep_their_telegram_names() -> None:
    """The gate clears exactly the states of the managers' conversations; a roster awaited
    when the routing moved to the core (aiogram's `RosterUpload.waiting`) is still one."""
    assert managers.MANAGERS_STATES == {ROSTER_WAITING} == {"RosterUpload:waiting"}


async def test_members_and_strangers_are_refused(world: World) -> None:
    for who in (LI, 999):
        for command in (
            "/summary",
            "/missing",
            "/export",
            "/trend",
            "/schedule 07:00 11:00 16:00",
        ):
            assert (await world.command(who, command)).texts() == [REFUSAL]
        pressed = await world.press(who, NavKey(unit=0, day=ISO).pack())
        assert [(s.how, s.text, s.alert) for s in pressed.said] == [
            ("notice", NO_LONGER_VALID, True)
        ]


async def test_a_refusal_ends_a_roster_upload_but_not_a_check_in(world: World) -> None:
    world.state(LI).state = ROSTER_WAITING  # begun before the role was revoked
    await world.command(LI, "/summary")
    assert world.state(LI).state is None
    world.state(LI).state = "CheckInForm:answering"
    world.state(LI).data = {"draft": "d1"}
    await world.press(LI, NavKey(unit=0, day=ISO).pack())
    assert (world.state(LI).state, world.state(LI).data) == (
        "CheckInForm:answering",
        {"draft": "d1"},
    )


async def test_a_command_of_someone_else_is_not_the_managers(world: World) -> None:
    async def call(turn: Turn, scope: Scope | None) -> bool:
        return await managers.on_command(turn, scope, Command("checkin"))

    out = await world.turn(CLASS_ONE, call)
    assert out.said == []


async def test_forged_and_out_of_scope_keys_get_one_answer_and_read_nothing(
    world: World,
) -> None:
    await world.org("other", "第二中学", [("机密学院/机密班", "S001", "赵机密")])
    secret_unit = await world.unit_id("机密学院/机密班", "other")
    secret_member = await world.member_id("S001", "other")
    class_two = await world.unit_id("工程学院/二班")
    wang = await world.member_id("2024003")
    cases = {
        ADMIN: [
            NavKey(unit=secret_unit, day=ISO).pack(),
            ListKey(kind="missing", unit=secret_unit, day=ISO).pack(),
            NudgeKey(member=secret_member, day=ISO).pack(),
            ScheduleKey(unit=secret_unit).pack(),
            OrgKey(org=world.org_ids["other"]).pack(),
            "sch:1:1",  # an administrator's schedule is the organisation's
            "nav:0:9999-12-31:0",
            "nud:987654:2026-11-28",
        ],
        CLASS_ONE: [
            NavKey(unit=class_two, day=ISO).pack(),
            ListKey(kind="abnormal", unit=class_two, day=ISO).pack(),
            NudgeKey(member=wang, day=ISO).pack(),
            ScheduleKey(unit=class_two, put=True).pack(),
            f"lst:secrets:{class_two}:x:0",
        ],
    }
    for who, keys in cases.items():
        for key in keys:
            with world.counting() as statements:
                out = await world.press(who, key)
            assert [(s.how, s.text, s.alert) for s in out.said] == [
                ("notice", NO_LONGER_VALID, True)
            ], key
            # After the visitor's look-ups, at most the scope's one question: is it inside?
            asked = statements[VISITOR_READS:]
            assert len(asked) <= 1, (key, asked)
            assert all(s.startswith(("SELECT unit.", "SELECT member.")) for s in asked), key
    async with world.sessions() as session:
        assert (await session.exec(select(Outbox))).all() == []


async def test_a_manager_of_two_organisations_chooses_where_to_work(world: World) -> None:
    await world.org("village", "第二村", [("一组", "V1", "村民甲")])
    await world.grant(903, None, role="admin")
    await world.grant(903, None, role="admin", slug="village")
    choice = await world.command(903, "/summary")
    [said] = choice.said
    assert said.text == "您管理多个组织，要在哪一个中操作？"
    assert said.labels() == ["🏫 第一中学", "🏫 第二村"]
    assert said.keys() == [f"org:{world.org_ids['school']}", f"org:{world.org_ids['village']}"]
    assert (await world.command(903, "/missing")).said == [said]  # every command waits for it
    pressed = await world.press(903, "nav:0:2026-11-28:0")
    assert [s.how for s in pressed.said] == ["notice", "say"] and pressed.said[1] == said

    chosen = await world.press(903, f"org:{world.org_ids['village']}")
    assert [(s.how, s.text) for s in chosen.said] == [
        ("notice", ""),
        ("replace", "已切换到第二村。请重新发送命令。"),
    ]
    async with world.sessions() as session:
        [account] = (
            await Repo(session).accounts.by_identities(channel="telegram", external_ids=["903"])
        ).values()
    assert account.org_id == world.org_ids["village"]
    [village] = (await world.command(903, "/summary")).said
    assert "第二村" in village.text and "第一中学" not in village.text
    assert village.options[-1][0].key == "org:0" and village.labels()[-1] == "🏫 切换组织"
    again = await world.press(903, "org:0")
    assert [s.how for s in again.said] == ["notice", "say"] and again.said[1] == said
    # Someone who manages one organisation has nothing to choose.
    for key in ("org:0", f"org:{world.org_ids['village']}"):
        assert (await world.press(ADMIN, key)).texts() == [NO_LONGER_VALID]
