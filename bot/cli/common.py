"""What every command group of `daka` shares: the one-line user error and argument checks."""

from __future__ import annotations

import argparse
import html
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from domain import forms
from domain.clock import Clock, zone
from storage.db import SessionFactory, create_session_factory
from storage.repo import Repo

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
EXIT_SETTING = 2

Command = Callable[[argparse.Namespace, Repo, Settings, Clock], Awaitable[None]]
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class UserError(Exception):
    """A mistake in what the admin asked for; printed as one line, exit code 1."""


def create_session_factory_for(repo: Repo) -> SessionFactory:
    """A factory on the same engine as the command's session (senders open their own)."""
    bind = repo.session.bind
    assert isinstance(bind, AsyncEngine)
    return create_session_factory(bind)


def html_to_text(text: str) -> str:
    """Reports are HTML for Telegram; the terminal gets them without tags."""
    return html.unescape(re.sub(r"</?(b|i|u|code)>", "", text))


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{text!r} is not a date like 2026-11-28") from None


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
