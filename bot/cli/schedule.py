"""`daka schedule`, `holiday` and `excuse`: when members are expected to check in."""

from __future__ import annotations

import argparse

from bot.cli.common import Command, Subparsers, UserError, parse_date
from bot.config import Settings
from domain.clock import Clock
from domain.schedule import ScheduleError, ScheduleSpec, format_days, format_times
from storage.repo import Repo
from storage.schedules import ScheduleRepo, spec_of


def add_parsers(sub: Subparsers) -> None:
    schedule = sub.add_parser("schedule", help="reminder times, cutoff, report time, days")
    schedule_sub = schedule.add_subparsers(dest="action", required=True)
    show = schedule_sub.add_parser("show", help="the schedule and its unit overrides")
    show.add_argument("slug")
    put = schedule_sub.add_parser("set", help="set the schedule (of a unit, with --unit)")
    put.add_argument("slug")
    put.add_argument("--unit", help="unit path whose subtree gets its own schedule")
    put.add_argument("--remind", required=True, metavar="HH:MM,...")
    put.add_argument("--cutoff", required=True, metavar="HH:MM")
    put.add_argument("--report", required=True, metavar="HH:MM")
    put.add_argument("--days", default="mon-sun", help="e.g. mon-fri, or mon,wed,fri")

    holiday = sub.add_parser("holiday", help="days without check-in")
    holiday_sub = holiday.add_subparsers(dest="action", required=True)
    hadd = holiday_sub.add_parser("add", help="add holidays (YYYY-MM-DD)")
    hadd.add_argument("slug")
    hadd.add_argument("dates", nargs="+", metavar="DATE")
    hadd.add_argument("--unit", help="only this unit and everything under it")

    excuse = sub.add_parser("excuse", help="excuse a member for a range of days")
    excuse.add_argument("slug")
    excuse.add_argument("member_id")
    excuse.add_argument("--from", dest="first", required=True, metavar="DATE")
    excuse.add_argument("--to", dest="last", required=True, metavar="DATE")
    excuse.add_argument("--reason", required=True)


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
    try:
        spec = ScheduleSpec.parse(
            remind=args.remind, cutoff=args.cutoff, report=args.report, days=args.days
        )
    except ScheduleError as exc:
        raise UserError(str(exc)) from None
    await ScheduleRepo(repo.session).put(
        org_id=org.id or 0, unit_id=unit.id if unit else None, spec=spec
    )
    print(f"{unit.name_path if unit else org.slug}: {_spec_line(spec)}")


async def cmd_holiday_add(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    days = [parse_date(d) for d in args.dates]
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    added = await ScheduleRepo(repo.session).add_holidays(
        org_id=org.id or 0, days=days, unit_id=unit.id if unit else None
    )
    where = f" for {unit.name_path}" if unit else ""
    print(f"{added} holiday(s) added{where}, {len(days) - added} already known")


async def cmd_excuse(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    member = await repo.members.by_external(org_id=org.id or 0, external_id=args.member_id)
    if member is None or member.id is None:
        raise UserError(f"no member {args.member_id!r} in {org.slug}")
    first, last = parse_date(args.first), parse_date(args.last)
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


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("schedule", "show"): cmd_schedule_show,
    ("schedule", "set"): cmd_schedule_set,
    ("holiday", "add"): cmd_holiday_add,
    ("excuse", None): cmd_excuse,
}
