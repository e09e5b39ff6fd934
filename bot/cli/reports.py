"""`daka report`, `export`, `audit` and `retention`: what was recorded, and forgetting it."""

from __future__ import annotations

import argparse
from datetime import datetime, time, timedelta
from pathlib import Path

from bot.cli.common import (
    Command,
    Subparsers,
    UserError,
    create_session_factory_for,
    html_to_text,
    org_today,
    parse_date,
)
from bot.config import Settings
from domain.clock import Clock, zone
from domain.i18n import LOCALE_OF
from storage.repo import Repo

FORMATS = ("xlsx", "csv")


def add_parsers(sub: Subparsers) -> None:
    report = sub.add_parser("report", help="print the daily report")
    report.add_argument("slug")
    report.add_argument("--unit", help="only this unit's subtree")
    report.add_argument("--date", metavar="DATE", help="local day (default: today)")

    export = sub.add_parser(
        "export",
        help="one row per member per day, as .xlsx or .csv",
        description=(
            "The .xlsx speaks the organisation's language (headers, status words, answers) and "
            "types its cells (dates, times, numbers) for sorting and filtering; the .csv keeps "
            "the machine contract: English column names and status codes (docs/operations.md)."
        ),
    )
    export.add_argument("slug")
    export.add_argument("--date", metavar="DATE", help="one local day")
    export.add_argument("--from", dest="first", metavar="DATE", help="first day (with --to)")
    export.add_argument("--to", dest="last", metavar="DATE", help="last day (included)")
    export.add_argument("--unit", help="only this unit's subtree")
    export.add_argument(
        "--format",
        choices=FORMATS,
        help="default: the --output file's extension (.xlsx or .csv)",
    )
    export.add_argument(
        "--output", required=True, type=Path, metavar="FILE", help="a .xlsx or .csv file"
    )
    export.add_argument(
        "--raw",
        action="store_true",
        help="an .xlsx with the machine contract's headers and codes, as the .csv has",
    )

    audit = sub.add_parser("audit", help="who looked at or changed what")
    audit.add_argument("slug")
    audit.add_argument("--since", metavar="DATE", help="default: the last 7 days")

    sub.add_parser(
        "retention",
        help="apply every organisation's retention, and erase withdrawn members past their "
        "grace period, now",
    ).add_argument("--dry-run", action="store_true", help="only say what would be cleared")


def export_format(output: Path, asked: str | None) -> str:
    """The format the file's extension says; --format for a file named otherwise (a format
    that contradicts the extension is refused, and so is a name that says no format)."""
    implied = output.suffix.lower().removeprefix(".")
    if implied not in FORMATS:
        if asked is None:
            raise UserError(
                f"cannot tell the format of {output.name}: name it .xlsx or .csv, or give --format"
            )
        return asked
    if asked is not None and asked != implied:
        raise UserError(f"--format {asked} does not match the output file {output.name}")
    return implied


async def cmd_report(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    from domain.i18n import create_translator
    from scheduler.rounds import Rounds
    from storage.schedules import plan

    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    today = org_today(org, clock)
    day = parse_date(args.date, today) if args.date else today
    i18n = create_translator()
    rounds = Rounds(create_session_factory_for(repo), clock, i18n, channels=())  # prints only
    org_plan = await plan(repo.session, org)
    with i18n.context(), i18n.use_locale(LOCALE_OF[org.language]):
        parts = await rounds.report(
            repo.session, org_plan, unit.id if unit else None, day, org.language
        )
    print(html_to_text("\n".join(parts)))


async def cmd_audit(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    tz = zone(org.timezone)
    if args.since:
        since = datetime.combine(parse_date(args.since, org_today(org, clock)), time(0), tzinfo=tz)
    else:
        since = clock.now() - timedelta(days=7)
    entries = await repo.audit.since(org_id=org.id or 0, since=since)
    for entry in entries:
        at = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{at}\t{entry.actor}\t{entry.action}\t{entry.subject or ''}\t{entry.detail or ''}")
    print(f"{len(entries)} entries since {since.astimezone(tz):%Y-%m-%d %H:%M}")


async def cmd_retention(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    from bot.cli.privacy import forget_conversations
    from storage.retention import apply_retention

    now = clock.now()
    touched = await apply_retention(repo.session, now=now, dry_run=args.dry_run)
    verb = "would clear" if args.dry_run else "cleared"
    for slug, count in touched.items():
        print(f"{slug}: {verb} answers past their period in {count} check-in(s)")
    if args.dry_run:
        due = [(org.slug, m.external_id) for m, org in await repo.privacy.due(now=now)]
    else:
        erasures = await repo.privacy.erasures(now=now)
        identities = [i for *_, e in erasures for i in e.identities]
        await forget_conversations(settings, identities)
        await repo.session.commit()
        await forget_conversations(settings, identities, again=True)
        due = [(slug, external_id) for slug, external_id, _ in erasures]
    verb = "would erase" if args.dry_run else "erased"
    for slug, external_id in due:
        print(f"{slug}: {verb} the answers of {external_id} (withdrew consent)")


async def cmd_export(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    from storage.export import export_days, write_export

    org = await repo.orgs.require(slug=args.slug)
    if args.date and (args.first or args.last):
        raise UserError("give either --date or --from and --to")
    today = org_today(org, clock)
    if args.date:
        first = last = parse_date(args.date, today)
    elif args.first and args.last:
        first, last = parse_date(args.first, today), parse_date(args.last, today)
    else:
        raise UserError("give --date DATE, or --from DATE --to DATE")
    fmt = export_format(args.output, args.format)
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
                as_csv=fmt == "csv",
                raw=args.raw,
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
        detail=f"{first}..{last} {fmt}{' raw' if args.raw and fmt == 'xlsx' else ''}",
        now=clock.now(),
    )
    print(f"wrote {rows} rows ({first} to {last}) to {args.output}")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("report", None): cmd_report,
    ("audit", None): cmd_audit,
    ("export", None): cmd_export,
    ("retention", None): cmd_retention,
}
