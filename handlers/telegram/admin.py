"""Managers change their scope: excuse a member, upload a roster; /where shows where the scope
checked in from. Every action is authorised against the scope and audited."""

from __future__ import annotations

import html
import io

from aiogram import Bot, F
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import Message

from domain.clock import Clock, parse_day
from domain.conversation.turn import Visitor
from domain.i18n import _
from handlers.telegram.gate import ManagersConversation, managers_router
from handlers.telegram.views import asked_day
from storage.aggregates import member_days, place_counts
from storage.repo import Repo
from storage.roster import RosterFileError, parse_roster
from storage.schedules import ScheduleRepo
from storage.scope import Scope

router = managers_router("admin")

MAX_ROSTER_BYTES = 5 * 1024 * 1024


class RosterUpload(ManagersConversation):
    waiting = State()


@router.message(Command("where"), StateFilter(None))
async def on_where(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, scope: Scope
) -> None:
    day = await asked_day(message, command.args, scope, clock)
    if day is None:
        return
    org = scope.org
    assert org.id is not None
    under = await scope.under(repo.session)
    counts = await place_counts(repo.session, org_id=org.id, day=day, under=under)
    lines = [_("📍 <b>Where the check-ins came from</b> — {day}").format(day=day.isoformat())]
    if not counts:
        lines.append(_("Nobody."))
    for province, city, count, outside in counts:
        place = " ".join(dict.fromkeys(p for p in (province, city) if p)) or _("unknown place")
        flag = _(" ({n} outside the area)").format(n=outside) if outside else ""
        lines.append(f"• {html.escape(place)}: {count}{flag}")
    reported = await member_days(repo.session, org_id=org.id, day=day, under=under)
    outside_names = [m for m in reported if "geofence" in m.reasons]
    if outside_names:
        lines += ["", _("<b>Outside the area</b>")]
        lines += [
            f"• {html.escape(m.name)} ({html.escape(m.external_id)}, {html.escape(m.unit_path)})"
            for m in outside_names
        ]
    await message.answer("\n".join(lines))


@router.message(Command("excuse"), StateFilter(None))
async def on_excuse(
    message: Message,
    command: CommandObject,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    usage = _(
        "Usage: /excuse ID FROM TO REASON, for example /excuse 2024001 2026-12-01 2026-12-03 病假"
    )
    parts = (command.args or "").split(maxsplit=3)
    if len(parts) != 4:
        await message.answer(usage)
        return
    external_id, first_text, last_text, reason = parts
    today = scope.today(clock)
    first, last = parse_day(first_text, today), parse_day(last_text, today)
    if first is None or last is None or last < first:
        await message.answer(usage)
        return
    org = scope.org
    assert org.id is not None
    member = await scope.member(repo.session, external_id=external_id)
    if member is None or member.id is None:
        await message.answer(
            _("No member {id} in your scope.").format(id=html.escape(external_id))
        )
        return
    await ScheduleRepo(repo.session).excuse(
        org_id=org.id,
        member_id=member.id,
        first_day=first,
        last_day=last,
        reason=reason[:200],
        by=str(visitor.telegram_id),
        now=clock.now(),
    )
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="excuse",
        subject=member.external_id,
        detail=f"{first}..{last}: {reason[:200]}",
        now=clock.now(),
    )
    await message.answer(
        _("{name} is excused from {first} to {last}: {reason}").format(
            name=html.escape(member.name), first=first, last=last, reason=html.escape(reason)
        )
    )


@router.message(Command("roster"), StateFilter(None))
async def on_roster(message: Message, state: FSMContext, scope: Scope) -> None:
    await state.set_state(RosterUpload.waiting)
    await message.answer(
        _(
            "Send the roster as a .csv or .xlsx file, with the columns unit, member_id, name. "
            "Units must be in your scope. /cancel to stop."
        )
    )


@router.message(StateFilter(RosterUpload.waiting), F.document)
async def on_roster_file(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    document = message.document
    assert document is not None
    if (document.file_size or 0) > MAX_ROSTER_BYTES:
        await message.answer(_("That file is too large (5 MB at most)."))
        return
    buffer = io.BytesIO()
    await bot.download(document, destination=buffer)
    try:
        parsed = parse_roster(buffer.getvalue(), document.file_name or "roster.csv")
    except RosterFileError as exc:
        await message.answer(
            _("I could not read that file: {problem}").format(problem=html.escape(str(exc)))
        )
        return
    org = scope.org
    assert org.id is not None
    good, outside = await scope.roster_rows(repo.session, parsed.rows)
    # One text for a unit outside the scope and for a member id of someone outside it: an
    # upload neither moves other units' members nor tells whether their ids exist.
    rejected = [*parsed.errors, *((line, _("outside your scope")) for line in outside)]
    result = await repo.members.import_roster(org_id=org.id, rows=good)
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="roster.upload",
        subject=document.file_name,
        detail=f"{result.added} added, {result.updated} updated",
        now=clock.now(),
    )
    await state.clear()
    lines = [
        _("Roster: {added} added, {updated} updated, {rejected} rejected.").format(
            added=result.added, updated=result.updated, rejected=len(rejected)
        )
    ]
    lines += [
        _("line {line}: {problem}").format(line=line, problem=html.escape(problem))
        for line, problem in sorted(rejected)[:30]
    ]
    await message.answer("\n".join(lines))


@router.message(StateFilter(RosterUpload.waiting))
async def on_roster_other(message: Message) -> None:
    await message.answer(_("Please send the roster as a file (.csv or .xlsx), or /cancel."))
