"""What every manager view shares: the keys of the managers' buttons, the one refusal of a button
gone bad, and the day a command asks about.

The keys pack exactly as the aiogram `CallbackData` classes they replace (`nav`, `lst`, `nud`,
`org`, `sch`), so buttons already in chats keep working. Their fields are bounded where they are
unpacked: a value no row can have (beyond the database's integers, negative, a page past any
list, a day too long to be one) does not unpack, and the press gets "this button is no longer
valid"; a key that unpacks is still only a claim, which the caller's `Scope` checks."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field

from domain.clock import day_window, parse_day
from domain.conversation.io import Command
from domain.conversation.keys import Key
from domain.conversation.turn import Turn
from domain.i18n import _
from storage.scope import MAX_ROW_ID, Scope

RowId = Annotated[int, Field(ge=0, le=MAX_ROW_ID)]  # 0: the top of the caller's scope
Page = Annotated[int, Field(ge=0, le=100_000)]
Day = Annotated[str, Field(min_length=10, max_length=10)]

ListKind = Literal["missing", "abnormal"]

TOP = 0  # unit id 0 in a key: the top of the caller's scope


class NavKey(Key, prefix="nav"):
    """Drill-down in /summary: a unit of the scope (0: the scope's top) on a day."""

    unit: RowId
    day: Day
    page: Page = 0


class ListKey(Key, prefix="lst"):
    """A page of the missing or abnormal list of a unit of the scope (0: all of it)."""

    kind: ListKind
    unit: RowId
    day: Day
    page: Page = 0


class NudgeKey(Key, prefix="nud"):
    """Remind a missing member of the scope, now, to check in on the day."""

    member: RowId
    day: Day


class OrgKey(Key, prefix="org"):
    """Work in this organisation (0: show the choice again), for managers of several."""

    org: RowId


class ScheduleKey(Key, prefix="sch"):
    """/schedule of one of several granted units: show it, or give it the schedule typed."""

    unit: RowId
    put: bool = False


class PhotoKey(Key, prefix="pho"):
    """/member's photos of one member of the scope on a day, sent to the presser."""

    member: RowId
    day: Day


MANAGER_KEYS: tuple[type[Key], ...] = (
    NavKey,
    ListKey,
    NudgeKey,
    OrgKey,
    ScheduleKey,
    PhotoKey,
)


def no_longer_valid() -> str:
    return _("This button is no longer valid.")


async def stale(turn: Turn) -> None:
    """The one answer to a button whose key is tampered with, stale or not the presser's:
    nothing about why (another organisation, another unit, no such row, a far day)."""
    await turn.out.notice(no_longer_valid(), alert=True)


async def asked_day(turn: Turn, command: Command, scope: Scope) -> date | None:
    """The day a command asks about (the organisation's today without one); None after saying
    which days can be asked about."""
    today = scope.today(turn.clock)
    day = parse_day(command.args, today)
    if day is None:
        first, last = day_window(today)
        await turn.out.say(
            _(
                "Please give the date as YYYY-MM-DD, from {first} to {last}, for example {today}."
            ).format(first=first, last=last, today=today)
        )
    return day


def actor(turn: Turn) -> str:
    """Who did it, in the audit trail: their id with its channel ("telegram:730"), the same
    person's ids on two channels never mistaken for each other."""
    return turn.visitor.actor
