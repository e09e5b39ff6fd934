"""`daka unit`, `roster` and `member`: the unit tree and the people in it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import Command, Subparsers, UserError
from bot.config import Settings
from domain.clock import Clock
from storage.repo import Repo
from storage.roster import RosterFileError, parse_roster


def add_parsers(sub: Subparsers) -> None:
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

    member = sub.add_parser("member", help="members")
    member_sub = member.add_subparsers(dest="action", required=True)
    mlist = member_sub.add_parser("list", help="the roster with enrolment status")
    mlist.add_argument("slug")
    mlist.add_argument("--unit")


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


async def cmd_member_list(args: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    rows = await repo.members.listing(org_id=org.id or 0, under=unit)
    enrolled = 0
    print("unit\tmember_id\tname\tstatus")
    for row in rows:
        status = "enrolled" if row.member.account_id is not None else "not enrolled"
        if row.member.withdrawn_day is not None:
            status = f"withdrew consent {row.member.withdrawn_day}"
        enrolled += row.member.account_id is not None
        print(f"{row.unit_path}\t{row.member.external_id}\t{row.member.name}\t{status}")
    print(f"{len(rows)} members, {enrolled} enrolled, {len(rows) - enrolled} not enrolled")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("unit", "add"): cmd_unit_add,
    ("unit", "list"): cmd_unit_list,
    ("roster", "import"): cmd_roster_import,
    ("member", "list"): cmd_member_list,
}
