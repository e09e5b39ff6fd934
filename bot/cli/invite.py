"""`daka invite`: invite links that enrol members or managers, and revoking them."""

from __future__ import annotations

import argparse
from datetime import timedelta

from bot.cli.common import Command, Subparsers, UserError
from bot.config import SettingError, Settings
from domain.clock import Clock, zone
from domain.enrolment import ROLES
from storage.repo import Repo


def add_parsers(sub: Subparsers) -> None:
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


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("invite", None): cmd_invite,
}
