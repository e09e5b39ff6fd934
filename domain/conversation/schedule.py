"""/schedule: the reminder times, cutoff, report time and days of the caller's scope, shown or
changed; a manager of several units chooses which one (the schedule typed waits in the
conversation state until then, under `PENDING`)."""

from __future__ import annotations

import html

from domain.conversation.io import Command, Option
from domain.conversation.manager_keys import ScheduleKey, actor, stale
from domain.conversation.turn import Turn
from domain.i18n import _
from domain.schedule import ScheduleError, ScheduleSpec, effective_schedules, format_days
from storage.models import Unit
from storage.schedules import ScheduleRepo
from storage.scope import Scope

PENDING = "schedule"  # state data: the schedule typed by a manager of several units


def describe(spec: ScheduleSpec) -> str:
    return _(
        "Reminders: {remind}\nMissing list at: {cutoff}\nDaily report at: {report}\nDays: {days}"
    ).format(
        remind=", ".join(f"{t:%H:%M}" for t in spec.remind),
        cutoff=f"{spec.cutoff:%H:%M}",
        report=f"{spec.report:%H:%M}",
        days=format_days(spec.days),
    )


def usage() -> str:
    return _(
        "To change it: /schedule REMINDERS CUTOFF REPORT [DAYS], for example\n"
        "/schedule 08:00,10:00,12:00 14:00 15:00 mon-fri"
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


async def shown(turn: Turn, scope: Scope, unit: Unit | None) -> str:
    """The schedule in force for a granted unit (None: the organisation's), and how to change
    it."""
    org_spec, overrides = await ScheduleRepo(turn.repo.session).specs(org_id=scope.org_id)
    spec = org_spec
    if unit is not None and unit.id is not None:
        units = await turn.repo.units.all(org_id=scope.org_id)
        spec = effective_schedules(
            [(u.id or 0, u.parent_id) for u in units], org_spec, overrides
        ).get(unit.id, org_spec)
    name = html.escape(scope.org.name if unit is None else unit.name_path)
    return _("Schedule of {scope}:").format(scope=name) + "\n" + describe(spec) + "\n\n" + usage()


async def put(turn: Turn, scope: Scope, unit: Unit | None, args: str) -> str | None:
    """Give a granted unit (None: the organisation) the schedule typed; None when unreadable."""
    spec = parse_spec(args)
    if spec is None:
        return None
    await ScheduleRepo(turn.repo.session).put(
        org_id=scope.org_id, unit_id=unit.id if unit is not None else None, spec=spec
    )
    name = html.escape(scope.org.name if unit is None else unit.name_path)
    await turn.repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="schedule.set",
        subject=name,
        detail=args[:200],
        now=turn.clock.now(),
    )
    return _("Schedule of {scope} updated:").format(scope=name) + "\n" + describe(spec)


async def on_schedule(turn: Turn, scope: Scope, command: Command) -> None:
    """/schedule [REMINDERS CUTOFF REPORT [DAYS]]: show or change it; with several granted
    units, first the choice of one."""
    args = command.args.strip()
    if args and parse_spec(args) is None:
        await turn.out.say(usage())
        return
    targets: list[Unit | None] = (
        [None] if scope.whole else list(await scope.tops(turn.repo.session))
    )
    if len(targets) == 1:
        if args:
            await turn.out.say(await put(turn, scope, targets[0], args) or "")
        else:
            await turn.out.say(await shown(turn, scope, targets[0]))
        return
    if args:
        await turn.state.update_data({PENDING: args})
    options = [
        [Option(unit.name_path, key=ScheduleKey(unit=unit.id or 0, put=bool(args)).pack())]
        for unit in targets
        if unit is not None
    ]
    await turn.out.say(
        _("Which unit gets this schedule?") if args else _("The schedule of which unit?"),
        options,
    )


async def on_schedule_unit(turn: Turn, scope: Scope, key: ScheduleKey) -> None:
    """The unit chosen: its schedule shown, or the schedule typed given to it (once)."""
    unit = await scope.unit(turn.repo.session, key.unit)
    args = (await turn.state.get_data()).get(PENDING) if key.put else None
    if unit is None or unit.id not in (scope.unit_ids or ()) or (key.put and not args):
        await stale(turn)
        return
    if key.put:
        await turn.state.update_data({PENDING: None})
        text = await put(turn, scope, unit, str(args))
    else:
        text = await shown(turn, scope, unit)
    await turn.out.notice()
    if text:
        await turn.out.replace(text)
