"""Managers change their scope: excuse a member, upload a roster; /where shows where the scope
checked in from. Every action is authorised against the scope and audited."""

from __future__ import annotations

import html
import io
from datetime import date

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.context import Visitor
from domain.clock import Clock
from handlers.views import ORG, allowed, managed, manager_day, parse_day, refuse, scope_of
from storage.aggregates import member_days, place_counts
from storage.models import RoleGrant
from storage.repo import Repo
from storage.roster import RosterFileError, parse_roster
from storage.schedules import ScheduleRepo

router = Router(name="admin")

MAX_ROSTER_BYTES = 5 * 1024 * 1024


class RosterUpload(StatesGroup):
    waiting = State()


@router.message(Command("where"), StateFilter(None))
async def on_where(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    asked = await manager_day(message, command, repo, clock, visitor)
    if asked is None:
        return
    grants, org, day = asked
    assert org.id is not None
    scope = scope_of(grants[0])
    under = [u.id or 0 for u in await repo.units.roots(org_id=org.id)] if scope == ORG else [scope]
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
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    grants = await managed(repo, visitor)
    if not grants:
        await refuse(message)
        return
    usage = _(
        "Usage: /excuse ID FROM TO REASON, for example /excuse 2024001 2026-12-01 2026-12-03 病假"
    )
    parts = (command.args or "").split(maxsplit=3)
    if len(parts) != 4:
        await message.answer(usage)
        return
    external_id, first_text, last_text, reason = parts
    first, last = parse_day(first_text, date.today()), parse_day(last_text, date.today())
    if first is None or last is None or last < first:
        await message.answer(usage)
        return
    org = await repo.orgs.get(org_id=grants[0].org_id)
    assert org.id is not None
    member = await repo.members.by_external(org_id=org.id, external_id=external_id)
    if (
        member is None
        or member.id is None
        or not await allowed(repo, grants, org.id, member.unit_id)
    ):
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
async def on_roster(message: Message, state: FSMContext, repo: Repo, visitor: Visitor) -> None:
    if not await managed(repo, visitor):
        await refuse(message)
        return
    await state.set_state(RosterUpload.waiting)
    await message.answer(
        _(
            "Send the roster as a .csv or .xlsx file, with the columns unit, member_id, name. "
            "Units must be in your scope. /cancel to stop."
        )
    )


@router.message(StateFilter(RosterUpload.waiting), F.document)
async def on_roster_file(
    message: Message, bot: Bot, state: FSMContext, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    grants = await managed(repo, visitor)
    document = message.document
    assert document is not None
    if not grants:
        await state.clear()
        await refuse(message)
        return
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
    org = await repo.orgs.get(org_id=grants[0].org_id)
    assert org.id is not None
    prefixes = await scope_prefixes(repo, grants)
    good, rejected = [], list(parsed.errors)
    for row in parsed.rows:
        if prefixes is None or any(
            row.unit == p or row.unit.startswith(p + "/") for p in prefixes
        ):
            good.append(row)
        else:
            rejected.append(
                (row.line, _("unit {unit} is outside your scope").format(unit=row.unit))
            )
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


async def scope_prefixes(repo: Repo, grants: list[RoleGrant]) -> list[str] | None:
    """Unit paths a manager may write under; None for an administrator (everything)."""
    if any(g.unit_id is None for g in grants):
        return None
    return [(await repo.units.get(unit_id=g.unit_id or 0)).name_path for g in grants]
