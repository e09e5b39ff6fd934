"""The `daka` command line: run the bot, and set organisations up from scripts."""

from __future__ import annotations

import argparse
import asyncio
import html
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SettingError, Settings, load_settings
from bot.i18n import LOCALE_OF
from bot.logs import configure_logging, secrets_of
from domain import forms
from domain.clock import Clock, SystemClock, local_day, zone
from domain.enrolment import ROLES
from domain.schedule import (
    ScheduleError,
    ScheduleSpec,
    format_days,
    format_times,
    parse_time,
)
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import pending, upgrade
from storage.repo import Conflict, NotFound, Repo
from storage.roster import RosterFileError, parse_roster
from storage.schedules import OutboxRepo, ScheduleRepo, spec_of

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EXIT_SETTING = 2


class UserError(Exception):
    """A mistake in what the admin asked for; printed as one line, exit code 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="daka", description="Daka (打卡): daily check-ins on Telegram."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (long polling); applies migrations first")
    run.add_argument(
        "--metrics-port", type=int, help="serve /healthz and /metrics here (or METRICS_PORT)"
    )
    webhook = sub.add_parser(
        "webhook", help="serve Telegram's webhook deliveries (one of several replicas)"
    )
    webhook.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")
    webhook.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    webhook.add_argument(
        "--url", help="public HTTPS URL Telegram delivers to (the site, or site + WEBHOOK_PATH)"
    )
    webhook.add_argument(
        "--no-set-webhook",
        dest="set_webhook",
        action="store_false",
        help="do not call setWebhook (every replica but one)",
    )
    webhook.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also run reminders and the outbox sender here (single-replica deployments)",
    )
    sub.add_parser("check", help="health check: settings, database reachable, schema current")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations")

    org = sub.add_parser("org", help="organisations (a school, a town)")
    org_sub = org.add_subparsers(dest="action", required=True)
    create = org_sub.add_parser("create", help="create an organisation")
    create.add_argument("slug", help="short name, e.g. no1-middle-school")
    create.add_argument("--name", required=True)
    create.add_argument("--timezone", default="Asia/Shanghai")
    create.add_argument("--language", choices=["zh", "en"], default="zh")
    create.add_argument("--form", default="health", help="check-in form: health or location")
    org_set = org_sub.add_parser("set", help="change an organisation's settings")
    org_set.add_argument("slug")
    org_set.add_argument("--name")
    org_set.add_argument("--timezone")
    org_set.add_argument("--language", choices=["zh", "en"])
    org_set.add_argument("--form")
    org_set.add_argument("--geofence", metavar="LAT,LON,RADIUS_M", help="flag check-ins outside")
    org_set.add_argument("--no-geofence", action="store_true", help="remove the geofence")
    org_set.add_argument("--retain-days", type=int, help="days to keep exact coordinates")
    org_sub.add_parser("list", help="list organisations")

    unit = sub.add_parser("unit", help="units of an organisation (college/class, village/grid)")
    unit_sub = unit.add_subparsers(dest="action", required=True)
    unit_add = unit_sub.add_parser("add", help="add a unit, creating missing parents")
    unit_add.add_argument("slug")
    unit_add.add_argument("path", help='names joined by "/", e.g. "Engineering/Class 1"')
    unit_list = unit_sub.add_parser("list", help="list the unit tree")
    unit_list.add_argument("slug")

    roster = sub.add_parser("roster", help="the member roster")
    roster_sub = roster.add_subparsers(dest="action", required=True)
    imp = roster_sub.add_parser("import", help="import a .csv or .xlsx roster")
    imp.add_argument("slug")
    imp.add_argument("file", type=Path, help="header row with unit,member_id,name")

    invite = sub.add_parser(
        "invite",
        help="make an invite link (daka invite SLUG ...) or revoke one (daka invite revoke CODE)",
    )
    invite.add_argument("slug", metavar="SLUG|revoke")
    invite.add_argument("code", nargs="?", help="the code to revoke")
    invite.add_argument("--unit", help="unit path the invite is limited to")
    invite.add_argument("--role", choices=ROLES, default="member")
    invite.add_argument("--expires", type=int, default=7, metavar="DAYS")
    invite.add_argument("--uses", type=int, default=None, metavar="N")

    sched = sub.add_parser("scheduler", help="run only the scheduler and the outbox sender")
    sched.add_argument(
        "--metrics-port", type=int, help="serve /healthz and /metrics here (or METRICS_PORT)"
    )

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

    remind = sub.add_parser("remind", help="run a reminder round now and send it")
    remind.add_argument("slug")
    remind.add_argument("--unit", help="only members under this unit")
    remind.add_argument("--slot", metavar="HH:MM", help="count as this slot (never twice)")

    report = sub.add_parser("report", help="print the daily report")
    report.add_argument("slug")
    report.add_argument("--unit")
    report.add_argument("--date", metavar="DATE", help="local day (default: today)")

    export = sub.add_parser("export", help="one row per member per day, as .xlsx or .csv")
    export.add_argument("slug")
    export.add_argument("--date", metavar="DATE")
    export.add_argument("--from", dest="first", metavar="DATE")
    export.add_argument("--to", dest="last", metavar="DATE")
    export.add_argument("--unit", help="only this unit's subtree")
    export.add_argument("--format", choices=["csv", "xlsx"], default="xlsx")
    export.add_argument("--output", required=True, type=Path, metavar="FILE")

    role = sub.add_parser("role", help="managers and administrators")
    role_sub = role.add_subparsers(dest="action", required=True)
    grant = role_sub.add_parser("grant", help="make a Telegram user manager of a unit, or admin")
    grant.add_argument("slug")
    grant.add_argument("telegram_id", type=int)
    grant.add_argument("--unit", help="unit path (required for managers)")
    grant.add_argument("--role", choices=["manager", "admin"], default="manager")
    revoke = role_sub.add_parser("revoke", help="take a role back")
    revoke.add_argument("slug")
    revoke.add_argument("telegram_id", type=int)
    revoke.add_argument("--unit", help="only the role over this unit")
    role_sub.add_parser("list", help="roles of an organisation").add_argument("slug")

    audit = sub.add_parser("audit", help="who looked at or changed what")
    audit.add_argument("slug")
    audit.add_argument("--since", metavar="DATE", help="default: the last 7 days")

    sub.add_parser("retention", help="apply every organisation's retention now").add_argument(
        "--dry-run", action="store_true"
    )

    member = sub.add_parser("member", help="members")
    member_sub = member.add_subparsers(dest="action", required=True)
    mlist = member_sub.add_parser("list", help="the roster with enrolment status")
    mlist.add_argument("slug")
    mlist.add_argument("--unit")
    return parser


Command = Callable[[argparse.Namespace, Repo, Settings, Clock], Awaitable[None]]


async def cmd_org_create(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    if not SLUG.match(args.slug):
        raise UserError("the slug must be 2-63 lower-case letters, digits or '-'")
    _check_timezone(args.timezone)
    _check_form(args.form)
    org = await repo.orgs.create(
        slug=args.slug,
        name=args.name,
        timezone=args.timezone,
        language=args.language,
        form=args.form,
        now=clock.now(),
    )
    print(
        f"created organisation {org.slug} ({org.name}), time zone {org.timezone}, form {org.form}"
    )


async def cmd_org_set(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    if args.name:
        org.name = args.name
    if args.timezone:
        _check_timezone(args.timezone)
        org.timezone = args.timezone
    if args.language:
        org.language = args.language
    if args.form:
        _check_form(args.form)
        org.form = args.form
    if args.retain_days is not None:
        if args.retain_days < 1:
            raise UserError("--retain-days must be at least 1")
        org.retain_days = args.retain_days
    if args.no_geofence:
        org.geofence_lat = org.geofence_lon = org.geofence_radius_m = None
    elif args.geofence:
        org.geofence_lat, org.geofence_lon, org.geofence_radius_m = _parse_geofence(args.geofence)
    await repo.session.flush()
    fence = (
        f"{org.geofence_lat},{org.geofence_lon} r={org.geofence_radius_m:g} m"
        if org.geofence_radius_m
        else "none"
    )
    print(
        f"{org.slug}: name {org.name}, time zone {org.timezone}, language {org.language}, "
        f"form {org.form}, geofence {fence}, retain {org.retain_days} days"
    )


async def cmd_org_list(_a: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    from sqlmodel import select

    from storage.models import Organisation

    for org in (await repo.session.exec(select(Organisation).order_by(Organisation.slug))).all():
        print(f"{org.slug}\t{org.name}\t{org.timezone}\t{org.form}")


async def cmd_unit_add(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    try:
        unit = await repo.units.ensure(org_id=org.id or 0, name_path=args.path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(f"unit {unit.name_path}")


async def cmd_unit_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    for unit in await repo.units.all(org_id=org.id or 0):
        print("  " * unit.depth + unit.name)


async def cmd_roster_import(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        parsed = parse_roster(data, args.file.name)
    except RosterFileError as exc:
        raise UserError(f"{args.file}: {exc}") from None
    if parsed.errors:
        for line, problem in parsed.errors:
            print(f"{args.file}:{line}: {problem}", file=sys.stderr)
        raise UserError(f"{len(parsed.errors)} bad row(s); nothing was imported")
    result = await repo.members.import_roster(org_id=org.id or 0, rows=parsed.rows)
    print(
        f"imported {len(parsed.rows)} rows: {result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


async def cmd_invite(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    now = clock.now()
    if args.slug == "revoke":
        if not args.code:
            raise UserError("usage: daka invite revoke CODE")
        invite = await repo.invites.revoke(code=args.code, now=now)
        print(f"revoked invite {invite.code}")
        return
    if args.code:
        raise UserError("unexpected argument; usage: daka invite SLUG [--unit PATH] ...")
    org = await repo.orgs.require(slug=args.slug)
    if args.expires < 1:
        raise UserError("--expires must be at least 1 day")
    if args.uses is not None and args.uses < 1:
        raise UserError("--uses must be at least 1")
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    username = await _bot_username(settings)
    invite = await repo.invites.create(
        org_id=org.id or 0,
        unit_id=unit.id if unit else None,
        role=args.role,
        expires_at=now + timedelta(days=args.expires),
        max_uses=args.uses,
        now=now,
    )
    scope = unit.name_path if unit else "whole organisation"
    uses = f"{args.uses} use(s)" if args.uses else "unlimited uses"
    expires = invite.expires_at.astimezone(zone(org.timezone)).strftime("%Y-%m-%d %H:%M")
    print(f"{args.role} invite for {org.slug} ({scope}), {uses}, expires {expires}")
    print(f"code: {invite.code}")
    print(f"https://t.me/{username}?start={invite.code}")


async def _bot_username(settings: Settings) -> str:
    if settings.bot_username:
        return settings.bot_username.lstrip("@")
    if settings.bot_token is None:
        raise SettingError("BOT_USERNAME", "is required to print invite links (or set BOT_TOKEN)")
    from bot.app import create_bot

    bot = create_bot(settings)
    try:
        me = await bot.get_me()
    except Exception as exc:
        raise SettingError(
            "BOT_USERNAME", f"is unset and Telegram could not be asked ({type(exc).__name__})"
        ) from None
    finally:
        await bot.session.close()
    return me.username or ""


async def cmd_member_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    rows = await repo.members.listing(org_id=org.id or 0, under=unit)
    enrolled = 0
    print("unit\tmember_id\tname\tstatus")
    for row in rows:
        status = "enrolled" if row.member.telegram_id else "not enrolled"
        enrolled += bool(row.member.telegram_id)
        print(f"{row.unit_path}\t{row.member.external_id}\t{row.member.name}\t{status}")
    print(f"{len(rows)} members, {enrolled} enrolled, {len(rows) - enrolled} not enrolled")


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
    days = [_parse_date(d) for d in args.dates]
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
    first, last = _parse_date(args.first), _parse_date(args.last)
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


async def cmd_report(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    from bot.i18n import create_i18n
    from scheduler.rounds import Rounds
    from storage.schedules import plan

    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    day = _parse_date(args.date) if args.date else local_day(clock.now(), org.timezone)
    i18n = create_i18n()
    rounds = Rounds(create_session_factory_for(repo), clock, i18n)
    org_plan = await plan(repo.session, org)
    with i18n.context(), i18n.use_locale(LOCALE_OF[org.language]):
        parts = await rounds.report(
            repo.session, org_plan, unit.id if unit else None, day, org.language
        )
    print(html_to_text("\n".join(parts)))


async def cmd_remind(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    from bot.app import create_bot
    from bot.i18n import create_i18n
    from scheduler.rounds import Rounds
    from scheduler.sender import Sender
    from storage.schedules import plan

    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    settings.require_token()
    now = clock.now()
    day = local_day(now, org.timezone)
    if args.slot:
        try:
            slot = f"remind@{parse_time(args.slot):%H:%M}"
        except ScheduleError as exc:
            raise UserError(str(exc)) from None
    else:
        slot = f"manual@{now.astimezone(zone(org.timezone)):%H:%M:%S}"
    scope = f"unit:{unit.id}" if unit else "org"
    schedules = ScheduleRepo(repo.session)
    if not await schedules.claim_slot(
        org_id=org.id or 0, scope=scope, day=day, slot=slot, now=now
    ):
        raise UserError(f"the {slot} round of {day} has already run")
    org_plan = await plan(repo.session, org)
    sessions = create_session_factory_for(repo)
    rounds = Rounds(sessions, clock, create_i18n())
    unit_ids = (
        [u.id or 0 for u in org_plan.units if u.path.startswith(unit.path)]
        if unit
        else [u.id or 0 for u in org_plan.units]
    )
    letters = await rounds.reminders(repo.session, org_plan, unit_ids, day, slot)
    await OutboxRepo(repo.session).enqueue(letters, now=now)
    await repo.session.commit()
    bot = create_bot(settings)
    try:
        sender = Sender(bot, sessions, clock, rate=settings.send_rate)
        await sender.drain()
    finally:
        await bot.session.close()
    stats = await OutboxRepo(repo.session).stats(
        org_id=org.id or 0, day=day, kind="remind", slot=slot
    )
    print(
        f"{org.slug} {day} {slot}: due {stats.due}, sent {stats.sent}, skipped {stats.skipped}, "
        f"failed {stats.failed}, unreachable {stats.blocked}"
    )


async def cmd_role_grant(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    if args.role == "manager" and not args.unit:
        raise UserError("a manager needs --unit PATH (an admin covers the whole organisation)")
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    await repo.roles.grant(
        org_id=org.id or 0,
        telegram_id=args.telegram_id,
        unit_id=unit.id if unit else None,
        role=args.role,
        now=clock.now(),
    )
    scope = unit.name_path if unit else "whole organisation"
    await repo.audit.log(
        org_id=org.id,
        actor="cli",
        action=f"role.grant.{args.role}",
        subject=str(args.telegram_id),
        detail=scope,
        now=clock.now(),
    )
    print(f"{args.telegram_id} is now {args.role} of {scope} in {org.slug}")


async def cmd_role_revoke(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    grants = [
        g
        for g in await repo.roles.active(telegram_id=args.telegram_id, org_id=org.id)
        if unit is None or g.unit_id == unit.id
    ]
    if not grants:
        raise UserError(f"{args.telegram_id} has no such role in {org.slug}")
    for grant in grants:
        grant.revoked_at = clock.now()
        await repo.audit.log(
            org_id=org.id,
            actor="cli",
            action=f"role.revoke.{grant.role}",
            subject=str(args.telegram_id),
            now=clock.now(),
        )
    await repo.session.flush()
    print(f"revoked {len(grants)} role(s) of {args.telegram_id} in {org.slug}")


async def cmd_role_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    for grant in await ScheduleRepo(repo.session).managers(org_id=org.id or 0):
        scope = "whole organisation"
        if grant.unit_id is not None:
            scope = (await repo.units.get(unit_id=grant.unit_id)).name_path
        print(f"{grant.telegram_id}\t{grant.role}\t{scope}")


async def cmd_audit(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    tz = zone(org.timezone)
    if args.since:
        since = datetime.combine(_parse_date(args.since), time(0), tzinfo=tz)
    else:
        since = clock.now() - timedelta(days=7)
    entries = await repo.audit.since(org_id=org.id or 0, since=since)
    for entry in entries:
        at = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{at}\t{entry.actor}\t{entry.action}\t{entry.subject or ''}\t{entry.detail or ''}")
    print(f"{len(entries)} entries since {since.astimezone(tz):%Y-%m-%d %H:%M}")


async def cmd_retention(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    from storage.retention import apply_retention

    touched = await apply_retention(repo.session, now=clock.now(), dry_run=args.dry_run)
    for slug, count in touched.items():
        verb = "would clear" if args.dry_run else "cleared"
        print(f"{slug}: {verb} coordinates and photos of {count} check-in(s)")


async def cmd_export(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    from storage.export import export_days, write_export

    org = await repo.orgs.require(slug=args.slug)
    if args.date and (args.first or args.last):
        raise UserError("give either --date or --from and --to")
    if args.date:
        first = last = _parse_date(args.date)
    elif args.first and args.last:
        first, last = _parse_date(args.first), _parse_date(args.last)
    else:
        raise UserError("give --date DATE, or --from DATE --to DATE")
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    under = [unit.id or 0] if unit else None
    try:
        export_days(first, last)
        # Written as the rows come, a few thousand at a time, not held whole in memory.
        with args.output.open("wb") as out:
            rows = await write_export(
                repo.session,
                org=org,
                first=first,
                last=last,
                under=under,
                as_csv=args.format == "csv",
                out=out,
            )
    except ValueError as exc:
        args.output.unlink(missing_ok=True)
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    await repo.audit.log(
        org_id=org.id,
        actor="cli",
        action="export",
        subject=unit.name_path if unit else org.slug,
        detail=f"{first}..{last} {args.format}",
        now=clock.now(),
    )
    print(f"wrote {rows} rows ({first} to {last}) to {args.output}")


def create_session_factory_for(repo: Repo) -> SessionFactory:
    """A factory on the same engine as the command's session (senders open their own)."""
    bind = repo.session.bind
    assert isinstance(bind, AsyncEngine)
    return create_session_factory(bind)


def html_to_text(text: str) -> str:
    """Reports are HTML for Telegram; the terminal gets them without tags."""
    return html.unescape(re.sub(r"</?(b|i|u|code)>", "", text))


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not a date like 2026-11-28") from None


def _check_timezone(name: str) -> None:
    try:
        zone(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _check_form(name: str) -> None:
    try:
        forms.load_form(name)
    except forms.FormError as exc:
        raise UserError(str(exc)) from None


def _parse_geofence(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, radius = (float(p) for p in text.split(","))
    except ValueError:
        raise UserError("--geofence must be LAT,LON,RADIUS_M, e.g. 39.99,116.31,2000") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise UserError("--geofence: latitude -90..90, longitude -180..180, radius > 0")
    return lat, lon, radius


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("org", "create"): cmd_org_create,
    ("org", "set"): cmd_org_set,
    ("org", "list"): cmd_org_list,
    ("unit", "add"): cmd_unit_add,
    ("unit", "list"): cmd_unit_list,
    ("roster", "import"): cmd_roster_import,
    ("invite", None): cmd_invite,
    ("member", "list"): cmd_member_list,
    ("role", "grant"): cmd_role_grant,
    ("role", "revoke"): cmd_role_revoke,
    ("role", "list"): cmd_role_list,
    ("audit", None): cmd_audit,
    ("export", None): cmd_export,
    ("retention", None): cmd_retention,
    ("schedule", "show"): cmd_schedule_show,
    ("schedule", "set"): cmd_schedule_set,
    ("holiday", "add"): cmd_holiday_add,
    ("excuse", None): cmd_excuse,
    ("remind", None): cmd_remind,
    ("report", None): cmd_report,
}


async def run_command(args: argparse.Namespace, settings: Settings, clock: Clock) -> None:
    """One admin command in one transaction: all of it is stored, or none of it."""
    engine = create_engine(settings.database_url)
    try:
        if args.command == "check":
            missing = await pending(engine)
            if missing:
                raise UserError(f"database schema is behind: run `daka db upgrade` ({missing})")
            print("ok: settings valid, database reachable, schema up to date")
            return
        await upgrade(engine)
        if args.command == "db":
            print("database is up to date")
            return
        command = COMMANDS[(args.command, getattr(args, "action", None))]
        async with create_session_factory(engine)() as session:
            await command(args, Repo(session), settings, clock)
            await session.commit()
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Entry point of `daka` and `python -m bot`; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingError as exc:
        print(f"daka: setting {exc}", file=sys.stderr)
        return EXIT_SETTING
    configure_logging(settings.log_level, settings.log_format, secrets=secrets_of(settings))
    if args.command != "run" and settings.log_level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)  # keep admin output to the point
    clock = clock or SystemClock()
    try:
        if args.command == "run":
            settings.require_token()
            from bot.app import run_polling

            asyncio.run(
                run_polling(settings, clock=clock, metrics_port=_metrics_port(args, settings))
            )
        elif args.command == "scheduler":
            settings.require_token()
            from bot.app import run_scheduler

            asyncio.run(
                run_scheduler(settings, clock=clock, metrics_port=_metrics_port(args, settings))
            )
        elif args.command == "webhook":
            settings.require_token()
            settings.require_webhook_secret()
            if args.set_webhook and not args.url:
                raise UserError("webhook: --url is required unless --no-set-webhook is given")
            from bot.web import run_webhook

            asyncio.run(
                run_webhook(
                    settings,
                    host=args.host,
                    port=args.port,
                    url=args.url,
                    set_webhook=args.set_webhook,
                    with_scheduler=args.with_scheduler,
                    clock=clock,
                )
            )
        else:
            asyncio.run(run_command(args, settings, clock))
    except SettingError as exc:
        print(f"daka: setting {exc}", file=sys.stderr)
        return EXIT_SETTING
    except (UserError, NotFound, Conflict) as exc:
        print(f"daka: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("daka").debug("unexpected failure", exc_info=True)
        print(f"daka: failed: {_describe(exc)}", file=sys.stderr)
        return 1
    return 0


def _metrics_port(args: argparse.Namespace, settings: Settings) -> int | None:
    port: int | None = getattr(args, "metrics_port", None)
    return port if port is not None else settings.metrics_port


def _describe(exc: BaseException) -> str:
    """One line for an unexpected error (a database that cannot be opened, say)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
