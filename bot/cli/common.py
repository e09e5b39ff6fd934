"""What every command group of `daka` shares: the one-line user error and argument checks."""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import Awaitable, Callable, Collection
from datetime import date, datetime
from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from domain import forms
from domain.clock import Clock, day_window, local_day, read_day, zone
from storage.db import SessionFactory, create_session_factory
from storage.models import Organisation
from storage.repo import Repo

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EXIT_SETTING = 2
TELEGRAM_ID_MAX = 2**52 - 1  # Telegram: a user id "has at most 52 significant bits"

Command = Callable[[argparse.Namespace, Repo, Settings, Clock], Awaitable[None]]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UserError(Exception):
    """A mistake in what the admin asked for; printed as one line, exit code 1."""


class UsageError(UserError):
    """An argument the command cannot run with (a port in use): one line, exit code 2."""


class DefaultsShown(argparse.HelpFormatter):
    """`--help` says what an option is when it is left out (unless that is nothing, or a flag)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if (
            not text
            or "%(default)" in text
            or action.default is None
            or isinstance(action.default, bool)
            or action.default == argparse.SUPPRESS
            or (not action.option_strings and action.nargs not in ("?", "*"))
        ):
            return text
        return f"{text} (default: %(default)s)"


class DakaParser(argparse.ArgumentParser):
    """Every parser of `daka`, sub-commands included (argparse makes them of the same class)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", DefaultsShown)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def default_action(
    argv: list[str], command: str, actions: Collection[str], default: str
) -> list[str]:
    """`daka COMMAND X ...`, where X is none of the command's actions, is `COMMAND DEFAULT X ...`
    (so `daka invite SLUG` stays the short form of `daka invite create SLUG`)."""
    given = argv[1] if len(argv) >= 2 and argv[0] == command else None
    if given is not None and given not in actions and not given.startswith("-"):
        return [command, default, *argv[1:]]
    return argv


def local_time(at: datetime, timezone: str) -> str:
    """A moment as the organisation reads it, zone named: 2026-12-07 09:00 Asia/Shanghai."""
    return f"{at.astimezone(zone(timezone)):%Y-%m-%d %H:%M} {timezone}"


def create_session_factory_for(repo: Repo) -> SessionFactory:
    """A factory on the same engine as the command's session (senders open their own)."""
    bind = repo.session.bind
    assert isinstance(bind, AsyncEngine)
    return create_session_factory(bind)


def html_to_text(text: str) -> str:
    """Reports are HTML for Telegram; the terminal gets them without tags."""
    return html.unescape(re.sub(r"</?(b|i|u|code)>", "", text))


def parse_date(text: str, today: date) -> date:
    """A day the admin names: readable, and within the days the bot itself accepts around the
    organisation's `today` (`domain.clock.day_window`)."""
    day = read_day(text)
    if day is None:
        raise UserError(f"{text!r} is not a date like 2026-11-28")
    first, last = day_window(today)
    if not first <= day <= last:
        raise UserError(f"{text} is out of range: give a day from {first} to {last}")
    return day


def org_today(org: Organisation, clock: Clock) -> date:
    """The organisation's local day now: the day its dates are reckoned from."""
    return local_day(clock.now(), org.timezone)


def check_count(option: str, value: int, low: int, high: int, unit: str = "") -> None:
    """A number the admin gives, within what the bot can keep and means: one line otherwise."""
    if not low <= value <= high:
        raise UserError(f"{option} must be from {low} to {high}{unit}")


def check_timezone(name: str) -> None:
    try:
        zone(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def check_form(name: str) -> None:
    try:
        forms.load_form(name)
    except forms.FormError as exc:
        raise UserError(str(exc)) from None


def check_telegram_id(telegram_id: int) -> None:
    check_count("telegram_id", telegram_id, 1, TELEGRAM_ID_MAX, " (a Telegram user id)")
