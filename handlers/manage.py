"""Managers' commands: the schedule of their scope (reminders, cutoff, report, days)."""

from __future__ import annotations

import html

from aiogram import Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.context import Visitor
from domain.clock import Clock
from domain.schedule import ScheduleError, ScheduleSpec, effective_schedules, format_days
from storage.models import RoleGrant
from storage.repo import Repo
from storage.schedules import ScheduleRepo

router = Router(name="manage")


def describe(spec: ScheduleSpec) -> str:
    return _(
        "Reminders: {remind}\nMissing list at: {cutoff}\nDaily report at: {report}\nDays: {days}"
    ).format(
        remind=", ".join(f"{t:%H:%M}" for t in spec.remind),
        cutoff=f"{spec.cutoff:%H:%M}",
        report=f"{spec.report:%H:%M}",
        days=format_days(spec.days),
    )


async def scope_name(repo: Repo, grant: RoleGrant) -> str:
    if grant.unit_id is None:
        return (await repo.orgs.get(org_id=grant.org_id)).name
    return (await repo.units.get(unit_id=grant.unit_id)).name_path


@router.message(Command("schedule"), StateFilter(None))
async def on_schedule(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    if not visitor.roles:
        await message.answer(_("This command is for counselors, cadres and administrators."))
        return
    grant = visitor.roles[0]
    schedules = ScheduleRepo(repo.session)
    scope = html.escape(await scope_name(repo, grant))
    if command.args:
        parts = command.args.split()
        if len(parts) not in (3, 4):
            await message.answer(usage())
            return
        try:
            spec = ScheduleSpec.parse(
                remind=parts[0],
                cutoff=parts[1],
                report=parts[2],
                days=parts[3] if len(parts) == 4 else "mon-sun",
            )
        except ScheduleError:
            await message.answer(usage())
            return
        await schedules.put(org_id=grant.org_id, unit_id=grant.unit_id, spec=spec)
        await repo.audit.log(
            org_id=grant.org_id,
            actor=str(visitor.telegram_id),
            action="schedule.set",
            subject=scope,
            detail=command.args[:200],
            now=clock.now(),
        )
        await message.answer(
            _("Schedule of {scope} updated:").format(scope=scope) + "\n" + describe(spec)
        )
        return
    org_spec, overrides = await schedules.specs(org_id=grant.org_id)
    spec = org_spec
    if grant.unit_id is not None:
        units = await repo.units.all(org_id=grant.org_id)
        spec = effective_schedules(
            [(u.id or 0, u.parent_id) for u in units], org_spec, overrides
        ).get(grant.unit_id, org_spec)
    await message.answer(
        _("Schedule of {scope}:").format(scope=scope) + "\n" + describe(spec) + "\n\n" + usage()
    )


def usage() -> str:
    return _(
        "To change it: /schedule REMINDERS CUTOFF REPORT [DAYS], for example\n"
        "/schedule 08:00,10:00,12:00 14:00 15:00 mon-fri"
    )
