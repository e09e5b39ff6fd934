"""The `daka` command line: run the bot, and set organisations up from scripts.

One module per command group adds its parsers and its commands; this one assembles them and
turns every failure into one line and an exit code."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.cli import demo, invite, org, privacy, reports, roles, roster, run, schedule, wecom
from bot.cli.common import EXIT_SETTING, Command, DakaParser, UsageError, UserError
from bot.config import SettingError, Settings, load_settings
from bot.logs import configure_logging, secrets_of
from bot.loop import chosen
from bot.loop import run as run_loop
from domain.clock import Clock, SystemClock
from storage.db import create_engine, create_session_factory
from storage.migrate import pending, upgrade
from storage.repo import Conflict, NotFound, Repo

GROUPS = (run, wecom, demo, org, roster, invite, schedule, roles, reports, privacy)
COMMANDS: dict[tuple[str, str | None], Command] = {
    key: command for group in GROUPS for key, command in group.COMMANDS.items()
}


def build_parser() -> argparse.ArgumentParser:
    parser = DakaParser(
        prog="daka", description="Daka (打卡): daily check-ins on Telegram and WeCom."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def rewrite(argv: Sequence[str]) -> list[str]:
    """The command line as the parser reads it: short forms spelled out (see each group)."""
    words = list(argv)
    for short_forms in (invite.rewrite, schedule.rewrite, wecom.rewrite):
        words = short_forms(words)
    return words


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
    args = build_parser().parse_args(rewrite(sys.argv[1:] if argv is None else argv))
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
        if args.command == "demo":
            demo.serve(args, clock)
        elif args.command in run.SERVICES:
            with run.telegram_errors(settings):
                run.serve(args, settings, clock)
        elif (args.command, getattr(args, "action", None)) == ("wecom", "serve"):
            wecom.serve(args, settings, clock)
        else:
            run_loop(run_command(args, settings, clock), chosen(settings.event_loop, wecom=False))
    except SettingError as exc:
        print(f"daka: setting {exc}", file=sys.stderr)
        return EXIT_SETTING
    except UsageError as exc:
        print(f"daka: {exc}", file=sys.stderr)
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


def _describe(exc: BaseException) -> str:
    """One line for an unexpected error (a database that cannot be opened, say)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
