"""Managers' commands: the schedule of their scope (reminders, cutoff, report, days); a manager
of several units chooses which one."""

from __future__ import annotations

import html

from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from domain.clock import Clock
from domain.conversation.turn import Visitor
from domain.i18n import _
from domain.schedule import ScheduleError, ScheduleSpec, effective_schedules, format_days
from handlers.telegram.gate import managers_router, stale
from handlers.telegram.keyboards import ScheduleCb
from storage.models import Unit
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from storage.scope import Scope

router = managers_router("manage")

PENDING = "schedule"  # FSM data: the schedule typed by a manager of several units, until chosen


def describe(spec: ScheduleSpec) -> str:
    return _(
        "Reminders: {remind}\nMissing list at: {cutoff}\nDaily report at: {report}\nDays: {days}"
    ).format(
        remind=", ".join(f"{t:%H:%M}" for t in spec.remind),
        cutoff=f"{spec.cutoff:%H:%M}",
        report=f"{spec.report:%H:%M}",
        days=format_days(spec.days),
    )


def parse_spec(args: str) -> ScheduleSpec | None:
    parts = args.split()
    if len(parts) not in (3, 4):
        return None
    try:
        return ScheduleSpec.parse(
            remind=parts[0],
            cutoff=parts[1],
            report=parts[2],
            days=parts[3] if len(parts) == 4 else "mon-sun",
        )
    except ScheduleError:
        return None


async def shown(repo: Repo, scope: Scope, unit: Unit | None) -> str:
    """The schedule in force for a granted unit (None: the organisation's), and how to change
    it."""
    schedules = ScheduleRepo(repo.session)
    org_spec, overrides = await schedules.specs(org_id=scope.org_id)
    spec = org_spec
    if unit is not None and unit.id is not None:
        units = await repo.units.all(org_id=scope.org_id)
        spec = effective_schedules(
            [(u.id or 0, u.parent_id) for u in units], org_spec, overrides
        ).get(unit.id, org_spec)
    name = html.escape(scope.org.name if unit is None else unit.name_path)
    return _("Schedule of {scope}:").format(scope=name) + "\n" + describe(spec) + "\n\n" + usage()


async def put(
    repo: Repo, clock: Clock, visitor: Visitor, scope: Scope, unit: Unit | None, args: str
) -> str | None:
    """Give a granted unit (None: the organisation) the schedule typed; None when unreadable."""
    spec = parse_spec(args)
    if spec is None:
        return None
    await ScheduleRepo(repo.session).put(
        org_id=scope.org_id, unit_id=unit.id if unit is not None else None, spec=spec
    )
    name = html.escape(scope.org.name if unit is None else unit.name_path)
    await repo.audit.log(
        org_id=scope.org_id,
        actor=str(visitor.telegram_id),
        action="schedule.set",
        subject=name,
        detail=args[:200],
        now=clock.now(),
    )
    return _("Schedule of {scope} updated:").format(scope=name) + "\n" + describe(spec)


@router.message(Command("schedule"), StateFilter(None))
async def on_schedule(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    args = (command.args or "").strip()
    if args and parse_spec(args) is None:
        await message.answer(usage())
        return
    targets: list[Unit | None] = [None] if scope.whole else list(await scope.tops(repo.session))
    if len(targets) == 1:
        if args:
            await message.answer(await put(repo, clock, visitor, scope, targets[0], args) or "")
        else:
            await message.answer(await shown(repo, scope, targets[0]))
        return
    if args:
        await state.update_data({PENDING: args})
    rows = [
        [
            InlineKeyboardButton(
                text=unit.name_path,
                callback_data=ScheduleCb(unit=unit.id or 0, put=bool(args)).pack(),
            )
        ]
        for unit in targets
        if unit is not None
    ]
    await message.answer(
        _("Which unit gets this schedule?") if args else _("The schedule of which unit?"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


@router.callback_query(ScheduleCb.filter())
async def on_schedule_unit(
    query: CallbackQuery,
    callback_data: ScheduleCb,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    unit = await scope.unit(repo.session, callback_data.unit)
    args = (await state.get_data()).get(PENDING) if callback_data.put else None
    if unit is None or unit.id not in (scope.unit_ids or ()) or (callback_data.put and not args):
        await stale(query)
        return
    if callback_data.put:
        await state.update_data({PENDING: None})
        text = await put(repo, clock, visitor, scope, unit, str(args))
    else:
        text = await shown(repo, scope, unit)
    await query.answer()
    if isinstance(query.message, Message) and text:
        await query.message.edit_text(text)


def usage() -> str:
    return _(
        "To change it: /schedule REMINDERS CUTOFF REPORT [DAYS], for example\n"
        "/schedule 08:00,10:00,12:00 14:00 15:00 mon-fri"
    )
