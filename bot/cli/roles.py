"""`daka role`: managers of units and administrators of an organisation."""

from __future__ import annotations

import argparse

from bot.cli.common import Command, Subparsers, UserError, check_telegram_id
from bot.config import Settings
from domain.clock import Clock
from domain.delivery import TELEGRAM
from storage.repo import Repo
from storage.schedules import ScheduleRepo


def add_parsers(sub: Subparsers) -> None:
    role = sub.add_parser("role", help="managers and administrators")
    role_sub = role.add_subparsers(dest="action", required=True)
    grant = role_sub.add_parser("grant", help="make a Telegram user manager of a unit, or admin")
    grant.add_argument("slug")
    grant.add_argument("telegram_id", type=int, help="their numeric Telegram user id")
    grant.add_argument("--unit", help="unit path (required for managers)")
    grant.add_argument(
        "--role", choices=["manager", "admin"], default="manager", help="admin: everything"
    )
    revoke = role_sub.add_parser("revoke", help="take a role back")
    revoke.add_argument("slug")
    revoke.add_argument("telegram_id", type=int)
    revoke.add_argument("--unit", help="only the role over this unit")
    role_sub.add_parser("list", help="roles of an organisation").add_argument("slug")


async def cmd_role_grant(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    check_telegram_id(args.telegram_id)
    org = await repo.orgs.require(slug=args.slug)
    if args.role == "manager" and not args.unit:
        raise UserError("a manager needs --unit PATH (an admin covers the whole organisation)")
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    account = await repo.accounts.ensure(
        channel=TELEGRAM, external_id=str(args.telegram_id), now=clock.now()
    )
    await repo.roles.grant(
        org_id=org.id or 0,
        account_id=account.id or 0,
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
    check_telegram_id(args.telegram_id)
    org = await repo.orgs.require(slug=args.slug)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    account = await repo.accounts.by_identity(channel=TELEGRAM, external_id=str(args.telegram_id))
    held = (
        []
        if account is None
        else await repo.roles.active(account_id=account.id or 0, org_id=org.id)
    )
    grants = [g for g in held if unit is None or g.unit_id == unit.id]
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
    grants = await ScheduleRepo(repo.session).managers(org_id=org.id or 0)
    if not grants:
        print(f"no managers or administrators in {org.slug}")
    telegram = await repo.accounts.contacts(
        channel=TELEGRAM, account_ids={g.account_id for g in grants}
    )
    for grant in grants:
        scope = "whole organisation"
        if grant.unit_id is not None:
            scope = (await repo.units.get(unit_id=grant.unit_id)).name_path
        contact = telegram.get(grant.account_id)
        who = contact.external_id if contact is not None else f"account {grant.account_id}"
        print(f"{who}\t{grant.role}\t{scope}")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("role", "grant"): cmd_role_grant,
    ("role", "revoke"): cmd_role_revoke,
    ("role", "list"): cmd_role_list,
}
