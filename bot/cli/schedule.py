"""`daka schedule`, `holiday` and `excuse`: when members are expected to check in."""

from __future__ import annotations

import argparse

from bot.cli.common import (
    Command,
    Subparsers,
    UserError,
    default_action,
    org_today,
    parse_date,
)
from bot.config import Settings
from domain.clock import Clock
from domain.schedule import (
    ScheduleError,
    ScheduleSpec,
    effective_schedules,
    format_days,
    format_times,
)
from storage.repo import Repo
from storage.schedules import ScheduleRepo, spec_of

EXCUSE_ACTIONS = ("add", "list", "cancel")
ROW_ID_MAX = 2**63 - 1


def add_parsers(sub: Subparsers) -> None:
    schedule = sub.add_parser("schedule", help="reminder times, cutoff, report time, days")
    schedule_sub = schedule.add_subparsers(dest="action", required=True)
    show = schedule_sub.add_parser("show", help="the schedule and its unit overrides")
    show.add_argument("slug")
    put = schedule_sub.add_parser(
        "set",
        help="set the schedule (of a unit, with --unit); what is not given stays as it is",
        description="What is not given stays as the schedule in force: the unit's own, else "
        "that of the nearest unit above with one, else the organisation's.",
    )
    put.add_argument("slug")
    put.add_argument("--unit", help="unit path whose subtree gets its own schedule")
    put.add_argument("--remind", metavar="HH:MM,...", help="reminder times")
    put.add_argument("--cutoff", metavar="HH:MM", help="last time to check in")
    put.add_argument("--report", metavar="HH:MM", help="managers' report time")
    put.add_argument("--days", help="e.g. mon-fri, or mon,wed,fri")

    holiday = sub.add_parser("holiday", help="days without check-in")
    holiday_sub = holiday.add_subparsers(dest="action", required=True)
    hadd = holiday_sub.add_parser("add", help="add holidays (YYYY-MM-DD)")
    hadd.add_argument("slug")
    hadd.add_argument("dates", nargs="+", metavar="DATE")
    hadd.add_argument("--unit", help="only this unit and everything under it")
    hremove = holiday_sub.add_parser("remove", help="take holidays back (YYYY-MM-DD)")
    hremove.add_argument("slug")
    hremove.add_argument("dates", nargs="+", metavar="DATE")
    hremove.add_argument("--unit", help="the unit's own holidays, not the organisation's")
    holiday_sub.add_parser("list", help="holidays, the organisation's and units'").add_argument(
        "slug"
    )

    excuse = sub.add_parser(
        "excuse",
        help="excuse a member for a range of days (add, the default), list, cancel",
        description="daka excuse SLUG MEMBER_ID ... is short for daka excuse add SLUG ...",
    )
    excuse_sub = excuse.add_subparsers(dest="action", required=True)
    add = excuse_sub.add_parser("add", help="excuse a member for a range of days")
    add.add_argument("slug")
    add.add_argument("member_id", help="the member's id in the roster")
    add.add_argument("--from", dest="first", required=True, metavar="DATE", help="first day")
    add.add_argument(
        "--to", dest="last", required=True, metavar="DATE", help="last day (included)"
    )
    add.add_argument("--reason", required=True, help="e.g. sick leave (up to 200 characters)")
    listing = excuse_sub.add_parser("list", help="excuses, with the number cancel takes")
    listing.add_argument("slug")
    listing.add_argument("--member", metavar="MEMBER_ID", help="only this member's")
    cancel = excuse_sub.add_parser("cancel", help="take an excuse back")
    cancel.add_argument("slug")
    cancel.add_argument("excuse_id", type=int, metavar="ID", help="its number in excuse list")


def rewrite(argv: list[str]) -> list[str]:
    """`daka excuse SLUG MEMBER_ID ...` means `excuse add SLUG MEMBER_ID ...`."""
    return default_action(argv, "excuse", EXCUSE_ACTIONS, "add")


async def cmd_schedule_show(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    rows = await ScheduleRepo(repo.session).all(org_id=org.id or 0)
    org_spec, _ = await ScheduleRepo(repo.session).specs(org_id=org.id or 0)
    holidays = sorted(await ScheduleRepo(repo.session).holidays(org_id=org.id or 0))
    print(
        f"{org.slug} ({org.timezone}){'' if any(r.unit_id is None for r in rows) else ' default'}"
    )
    print(f"  {_spec_line(org_spec)}")
    for row in rows:
        if row.unit_id is not None:
            unit = await repo.units.get(unit_id=row.unit_id)
            print(f"{unit.name_path}:\n  {_spec_line(spec_of(row))}")
    if holidays:
        print("holidays: " + ", ".join(d.isoformat() for d in holidays))
    for unit_id, days in (
        await ScheduleRepo(repo.session).unit_holidays(org_id=org.id or 0)
    ).items():
        unit = await repo.units.get(unit_id=unit_id)
        print(f"holidays of {unit.name_path}: " + ", ".join(d.isoformat() for d in sorted(days)))


def _spec_line(spec: ScheduleSpec) -> str:
    return (
        f"remind {format_times(spec.remind)}, cutoff {spec.cutoff:%H:%M}, "
        f"report {spec.report:%H:%M}, days {format_days(spec.days)}"
    )


async def cmd_schedule_set(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    if args.remind is None and args.cutoff is None and args.report is None and args.days is None:
        raise UserError("nothing to set: give --remind, --cutoff, --report or --days")
    schedules = ScheduleRepo(repo.session)
    org_spec, overrides = await schedules.specs(org_id=org.id or 0)
    current = org_spec
    if unit is not None:
        tree = [(u.id or 0, u.parent_id) for u in await repo.units.all(org_id=org.id or 0)]
        current = effective_schedules(tree, org_spec, overrides)[unit.id or 0]
    try:
        spec = ScheduleSpec.parse(
            remind=args.remind or format_times(current.remind),
            cutoff=args.cutoff or f"{current.cutoff:%H:%M}",
            report=args.report or f"{current.report:%H:%M}",
            days=args.days or format_days(current.days),
        )
    except ScheduleError as exc:
        raise UserError(str(exc)) from None
    await schedules.put(org_id=org.id or 0, unit_id=unit.id if unit else None, spec=spec)
    print(f"{unit.name_path if unit else org.slug}: {_spec_line(spec)}")


async def cmd_holiday_add(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    org = await repo.orgs.require(slug=args.slug)
    today = org_today(org, clock)
    days = [parse_date(d, today) for d in args.dates]
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    added = await ScheduleRepo(repo.session).add_holidays(
        org_id=org.id or 0, days=days, unit_id=unit.id if unit else None
    )
    where = f" for {unit.name_path}" if unit else ""
    print(f"{added} holiday(s) added{where}, {len(days) - added} already known")


async def cmd_holiday_remove(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    org = await repo.orgs.require(slug=args.slug)
    today = org_today(org, clock)
    days = sorted({parse_date(d, today) for d in args.dates})
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    removed = await ScheduleRepo(repo.session).remove_holidays(
        org_id=org.id or 0, days=days, unit_id=unit.id if unit else None
    )
    where = f" of {unit.name_path}" if unit else ""
    print(f"{removed} holiday(s){where} removed, {len(days) - removed} were not holidays")


async def cmd_holiday_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    schedules = ScheduleRepo(repo.session)
    found = [(day, "whole organisation") for day in await schedules.holidays(org_id=org.id or 0)]
    for unit_id, days in (await schedules.unit_holidays(org_id=org.id or 0)).items():
        unit = await repo.units.get(unit_id=unit_id)
        found += [(day, unit.name_path) for day in days]
    if not found:
        print(f"no holidays in {org.slug}")
    for day, scope in sorted(found):
        print(f"{day:%Y-%m-%d %a}\t{scope}")


async def cmd_excuse_add(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    member = await repo.members.by_external(org_id=org.id or 0, external_id=args.member_id)
    if member is None or member.id is None:
        raise UserError(f"no member {args.member_id!r} in {org.slug}")
    today = org_today(org, clock)
    first, last = parse_date(args.first, today), parse_date(args.last, today)
    if last < first:
        raise UserError("--to is before --from")
    reason = args.reason.strip()[:200]
    if not reason:
        raise UserError("--reason must not be empty")
    await ScheduleRepo(repo.session).excuse(
        org_id=org.id or 0,
        member_id=member.id,
        first_day=first,
        last_day=last,
        reason=reason,
        by="cli",
        now=clock.now(),
    )
    await repo.audit.log(
        org_id=org.id,
        actor="cli",
        action="excuse",
        subject=member.external_id,
        detail=f"{first}..{last}: {reason}",
        now=clock.now(),
    )
    print(f"{member.name} ({member.external_id}) excused {first} to {last}: {reason}")


async def cmd_excuse_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    member_id = None
    if args.member is not None:
        member = await repo.members.by_external(org_id=org.id or 0, external_id=args.member)
        if member is None or member.id is None:
            raise UserError(f"no member {args.member!r} in {org.slug}")
        member_id = member.id
    found = await ScheduleRepo(repo.session).excuses(org_id=org.id or 0, member_id=member_id)
    if not found:
        print(f"no excuses in {org.slug}" + (f" for {args.member}" if args.member else ""))
        return
    print("id\tmember_id\tname\tfrom\tto\treason\tby")
    for excuse, member in found:
        print(
            f"{excuse.id}\t{member.external_id}\t{member.name}\t{excuse.first_day}\t"
            f"{excuse.last_day}\t{excuse.reason}\t{excuse.created_by}"
        )


async def cmd_excuse_cancel(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    org = await repo.orgs.require(slug=args.slug)
    cancelled = (
        await ScheduleRepo(repo.session).cancel_excuse(
            org_id=org.id or 0, excuse_id=args.excuse_id
        )
        if 1 <= args.excuse_id <= ROW_ID_MAX  # a number no row has does not reach the database
        else None
    )
    if cancelled is None:
        raise UserError(f"no excuse {args.excuse_id} in {org.slug} (see daka excuse list)")
    excuse, member = cancelled
    await repo.audit.log(
        org_id=org.id,
        actor="cli",
        action="excuse.cancel",
        subject=member.external_id,
        detail=f"{excuse.first_day}..{excuse.last_day}: {excuse.reason}",
        now=clock.now(),
    )
    print(
        f"cancelled excuse {args.excuse_id}: {member.name} ({member.external_id}) "
        f"{excuse.first_day} to {excuse.last_day}: {excuse.reason}"
    )


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("schedule", "show"): cmd_schedule_show,
    ("schedule", "set"): cmd_schedule_set,
    ("holiday", "add"): cmd_holiday_add,
    ("holiday", "remove"): cmd_holiday_remove,
    ("holiday", "list"): cmd_holiday_list,
    ("excuse", "add"): cmd_excuse_add,
    ("excuse", "list"): cmd_excuse_list,
    ("excuse", "cancel"): cmd_excuse_cancel,
}
