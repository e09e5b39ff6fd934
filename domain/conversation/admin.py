"""Managers change their scope: /excuse a member for some days, /roster upload a file of members.
Every line is authorised against the `Scope` (a line outside it is refused with one text, so an
upload tells nothing about other units) and every change is audited."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from domain.clock import parse_day
from domain.conversation.io import Command, Document
from domain.conversation.manager_keys import actor
from domain.conversation.turn import Turn
from domain.i18n import _
from storage.roster import RosterFileError, parse_roster
from storage.schedules import ScheduleRepo
from storage.scope import Scope

MAX_ROSTER_BYTES = 5 * 1024 * 1024
ROSTER_WAITING = "RosterUpload:waiting"  # the state while a roster file is awaited

Fetch = Callable[[Document], Awaitable[bytes]]  # the channel's download of a document


async def on_excuse(turn: Turn, scope: Scope, command: Command) -> None:
    """/excuse ID FROM TO REASON: a member of the scope is not expected on those days."""
    usage = _(
        "Usage: /excuse ID FROM TO REASON, for example /excuse 2024001 2026-12-01 2026-12-03 病假"
    )
    parts = command.args.split(maxsplit=3)
    if len(parts) != 4:
        await turn.out.say(usage)
        return
    external_id, first_text, last_text, reason = parts
    today = scope.today(turn.clock)
    first, last = parse_day(first_text, today), parse_day(last_text, today)
    if first is None or last is None or last < first:
        await turn.out.say(usage)
        return
    member = await scope.member(turn.repo.session, external_id=external_id)
    if member is None or member.id is None:
        await turn.out.say(_("No member {id} in your scope.").format(id=html.escape(external_id)))
        return
    await ScheduleRepo(turn.repo.session).excuse(
        org_id=scope.org_id,
        member_id=member.id,
        first_day=first,
        last_day=last,
        reason=reason[:200],
        by=actor(turn),
        now=turn.clock.now(),
    )
    await turn.repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="excuse",
        subject=member.external_id,
        detail=f"{first}..{last}: {reason[:200]}",
        now=turn.clock.now(),
    )
    await turn.out.say(
        _("{name} is excused from {first} to {last}: {reason}").format(
            name=html.escape(member.name), first=first, last=last, reason=html.escape(reason)
        )
    )


async def on_roster(turn: Turn, scope: Scope, command: Command) -> None:
    """/roster: wait for the file."""
    await turn.state.set_state(ROSTER_WAITING)
    await turn.out.say(
        _(
            "Send the roster as a .csv or .xlsx file, with the columns unit, member_id, name. "
            "Units must be in your scope. /cancel to stop."
        )
    )


async def on_roster_file(turn: Turn, scope: Scope, document: Document, fetch: Fetch) -> None:
    """The roster file: its lines inside the scope added or updated, the others refused by
    line number."""
    if (document.size or 0) > MAX_ROSTER_BYTES:
        await turn.out.say(_("That file is too large (5 MB at most)."))
        return
    try:
        data = await fetch(document)
    except LookupError:
        # The channel could not give the file (a WeCom MediaId expired, Telegram refused it):
        # the file is still awaited.
        await turn.out.say(_("Sorry, the file could not be received. Please send it again."))
        return
    try:
        parsed = parse_roster(data, document.name or "roster.csv")
    except RosterFileError as exc:
        await turn.out.say(
            _("I could not read that file: {problem}").format(problem=html.escape(str(exc)))
        )
        return
    good, outside = await scope.roster_rows(turn.repo.session, parsed.rows)
    # One text for a unit outside the scope and for a member id of someone outside it: an
    # upload neither moves other units' members nor tells whether their ids exist.
    rejected = [*parsed.errors, *((line, _("outside your scope")) for line in outside)]
    result = await turn.repo.members.import_roster(org_id=scope.org_id, rows=good)
    await turn.repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="roster.upload",
        subject=document.name or None,
        detail=f"{result.added} added, {result.updated} updated",
        now=turn.clock.now(),
    )
    await turn.state.clear()
    lines = [
        _("Roster: {added} added, {updated} updated, {rejected} rejected.").format(
            added=result.added, updated=result.updated, rejected=len(rejected)
        )
    ]
    lines += [
        _("line {line}: {problem}").format(line=line, problem=html.escape(problem))
        for line, problem in sorted(rejected)[:30]
    ]
    await turn.out.say("\n".join(lines))


async def on_roster_other(turn: Turn) -> None:
    """Anything but a file while one is awaited."""
    await turn.out.say(_("Please send the roster as a file (.csv or .xlsx), or /cancel."))
