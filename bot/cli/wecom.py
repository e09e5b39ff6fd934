"""`daka wecom`: serve the WeCom apps' callbacks (`daka wecom [--host H] [--port P]
[--with-scheduler]`), and `daka wecom menu SLUG`: install the menu of the organisation's app."""

from __future__ import annotations

import argparse

import aiohttp

from bot.cli.common import Command, Subparsers, UserError, check_count
from bot.config import Settings
from bot.loop import chosen
from bot.loop import run as run_loop
from domain.clock import Clock
from domain.delivery import Sent
from domain.i18n import LOCALE_OF, create_translator
from handlers.wecom.api import App, WeComAPI
from handlers.wecom.menu import app_menu
from handlers.wecom.messages import CHANNEL
from storage.repo import Repo

ACTIONS = ("serve", "menu")
DEFAULT_PORT = 8081  # beside `daka webhook`'s 8080


def add_parsers(sub: Subparsers) -> None:
    wecom = sub.add_parser(
        "wecom",
        help="serve the WeCom app's callbacks (daka wecom [--host H] [--port P] "
        "[--with-scheduler]); daka wecom menu SLUG installs the app's menu",
        description="daka wecom ... is short for daka wecom serve ...",
    )
    wecom_sub = wecom.add_subparsers(dest="action", required=True)
    serve = wecom_sub.add_parser(
        "serve", help="serve the callback URL (WECOM_PATH), /healthz and /metrics"
    )
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    serve.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also run reminders and the outbox sender here (for WeCom, and Telegram when "
        "BOT_TOKEN is set); run the scheduler in one process only",
    )
    menu = wecom_sub.add_parser("menu", help="install the app's menu (menu/create)")
    menu.add_argument("slug", help="the organisation the app serves")
    menu.add_argument("--members-only", action="store_true", help="without the managers' entries")


def rewrite(argv: list[str]) -> list[str]:
    """`daka wecom [options]` means `daka wecom serve [options]`."""
    if argv[:1] == ["wecom"] and (len(argv) == 1 or argv[1] not in (*ACTIONS, "-h", "--help")):
        return ["wecom", "serve", *argv[1:]]
    return argv


def serve(args: argparse.Namespace, settings: Settings, clock: Clock) -> None:
    """Run `daka wecom serve` until stopped."""
    settings.require_wecom_apps()
    check_count("--port", args.port, 0, 65535)
    from bot.wecom import run_wecom

    run_loop(
        run_wecom(
            settings,
            host=args.host,
            port=args.port,
            with_scheduler=args.with_scheduler,
            clock=clock,
        ),
        chosen(settings.event_loop, wecom=True),
    )


async def cmd_menu(args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock) -> None:
    apps = settings.require_wecom_apps("to install the menu")
    org = await repo.orgs.require(slug=args.slug)
    setting = await repo.channels.of_org(org_id=org.id or 0, channel=CHANNEL)
    wecom = next(
        (a for a in apps if setting is not None and setting.app_id == str(a.agent_id)), None
    )
    if wecom is None:
        served = setting.app_id if setting is not None else None
        agents = ", ".join(str(a.agent_id) for a in apps)
        raise UserError(
            f"{org.slug} is not served by a WeCom app of this deployment ({agents})"
            + (f"; its app {served} has no settings here" if served else "")
            + f": run daka org set {org.slug} --wecom-agent AGENT_ID"
        )
    i18n = create_translator()
    with i18n.context(), i18n.use_locale(LOCALE_OF.get(org.language, "zh_Hans")):
        buttons = app_menu(managers=not args.members_only)
    async with aiohttp.ClientSession() as http:
        app = App(wecom.corp_id, wecom.agent_id, wecom.secret)
        outcome = await WeComAPI(http, app, base_url=wecom.api_url, clock=clock).create_menu(
            buttons
        )
    if not isinstance(outcome, Sent):
        raise UserError(f"WeCom did not take the menu: {outcome}")
    names = " | ".join(str(entry["name"]) for entry in buttons)
    print(f"menu of WeCom app {wecom.agent_id} ({org.slug}) installed: {names}")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("wecom", "menu"): cmd_menu,
}
