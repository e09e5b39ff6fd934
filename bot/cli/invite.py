"""`daka invite`: invite links that enrol members or managers, and revoking them."""

from __future__ import annotations

import argparse
from datetime import timedelta

from bot.cli.common import Command, Subparsers, check_count, default_action, local_time
from bot.config import SettingError, Settings
from domain.clock import FUTURE_DAYS, Clock
from domain.enrolment import ROLES, code_is_well_formed, invite_problem
from storage.repo import Repo

ACTIONS = ("create", "revoke", "list")
MAX_USES = 1_000_000  # more than any organisation has members; the column is a 32-bit integer


def add_parsers(sub: Subparsers) -> None:
    invite = sub.add_parser(
        "invite",
        help="invite links: create (the default: daka invite SLUG ...), revoke, list",
        description="daka invite SLUG ... is short for daka invite create SLUG ...",
    )
    invite_sub = invite.add_subparsers(dest="action", required=True)
    create = invite_sub.add_parser("create", help="make an invite link (printed last)")
    create.add_argument("slug")
    create.add_argument("--unit", help="unit path the invite is limited to (default: none)")
    create.add_argument("--role", choices=ROLES, default="member", help="what the invite enrols")
    create.add_argument(
        "--expires",
        type=int,
        default=7,
        metavar="DAYS",
        help=f"days the link is valid (up to {FUTURE_DAYS})",
    )
    create.add_argument(
        "--uses", type=int, default=None, metavar="N", help="enrolments allowed (default: any)"
    )
    revoke = invite_sub.add_parser("revoke", help="make an invite link unusable")
    revoke.add_argument(
        "code", help="the code (the part after ?start=), even one that begins with -"
    )
    listing = invite_sub.add_parser(
        "list", help="an organisation's invites and what is left of them"
    )
    listing.add_argument("slug")


def rewrite(argv: list[str]) -> list[str]:
    """`daka invite SLUG` means `invite create SLUG`; a code may begin with "-" (URL-safe
    base64), which argparse would take for an option, so it goes after "--"."""
    argv = default_action(argv, "invite", ACTIONS, "create")
    if argv[:2] == ["invite", "revoke"] and len(argv) > 2:
        code = argv[2]
        if code.startswith("-") and code_is_well_formed(code):
            return [*argv[:2], *argv[3:], "--", code]
    return argv


async def cmd_invite_revoke(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    invite = await repo.invites.revoke(code=args.code, now=clock.now())
    print(f"revoked invite {invite.code}")


async def cmd_invite_create(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    now = clock.now()
    org = await repo.orgs.require(slug=args.slug)
    check_count("--expires", args.expires, 1, FUTURE_DAYS, " days")
    if args.uses is not None:
        check_count("--uses", args.uses, 1, MAX_USES)
    unit = await repo.units.require(org_id=org.id or 0, name_path=args.unit) if args.unit else None
    wecom = settings.wecom_agent_id is not None
    # A WeCom-only deployment has no Telegram link to print: its members send the code.
    telegram = settings.bot_token is not None or settings.bot_username is not None or not wecom
    username = await _bot_username(settings) if telegram else None
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
    expires = local_time(invite.expires_at, org.timezone)
    print(f"{args.role} invite for {org.slug} ({scope}), {uses}, expires {expires}")
    print(f"code: {invite.code}")
    if wecom:
        print(f"WeCom: send 绑定 {invite.code} to the app")
    if username is not None:
        print(f"https://t.me/{username}?start={invite.code}")


async def cmd_invite_list(
    args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock
) -> None:
    org = await repo.orgs.require(slug=args.slug)
    invites = await repo.invites.of_org(org_id=org.id or 0)
    if not invites:
        print(f"no invites in {org.slug}")
        return
    units = {u.id: u.name_path for u in await repo.units.all(org_id=org.id or 0)}
    usable = 0
    print("code\trole\tunit\tuses left\texpires\tstatus")
    for invite in invites:
        problem = invite_problem(
            expires_at=invite.expires_at,
            revoked_at=invite.revoked_at,
            max_uses=invite.max_uses,
            uses=invite.uses,
            now=clock.now(),
        )
        usable += problem is None
        scope = units.get(invite.unit_id, "?") if invite.unit_id else "whole organisation"
        left = "unlimited" if invite.max_uses is None else str(invite.max_uses - invite.uses)
        status = problem.value.replace("_", " ") if problem else "usable"
        if invite.revoked_at is not None:
            status += " " + local_time(invite.revoked_at, org.timezone)
        print(
            f"{invite.code}\t{invite.role}\t{scope}\t{left}\t"
            f"{local_time(invite.expires_at, org.timezone)}\t{status}"
        )
    print(f"{len(invites)} invite(s), {usable} usable")


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


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("invite", "create"): cmd_invite_create,
    ("invite", "revoke"): cmd_invite_revoke,
    ("invite", "list"): cmd_invite_list,
}
