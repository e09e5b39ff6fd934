"""The managers' gate: every manager command and button is handled behind it, so a new view
cannot forget the caller's scope, and no handler reads the server's day."""

from __future__ import annotations

import re
from pathlib import Path

from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackQueryFilter

import handlers
from handlers.gate import is_gated
from handlers.keyboards import MANAGER_CALLBACKS, OrgCb

MANAGER_COMMANDS = {
    "summary",
    "missing",
    "abnormal",
    "member",
    "export",
    "where",
    "trend",
    "excuse",
    "roster",
    "schedule",
}


def test_every_manager_command_and_button_is_behind_the_gate() -> None:
    root = handlers.build_router()
    commands: set[str] = set()
    buttons: set[str] = set()
    for router in root.sub_routers:
        for observer in (router.message, router.callback_query):
            for handler in observer.handlers:
                for each in handler.filters or []:
                    found = each.callback
                    if isinstance(found, Command):
                        names = {str(c) for c in found.commands} & MANAGER_COMMANDS
                        assert not names or is_gated(router), (router.name, names)
                        commands |= names
                    if isinstance(found, CallbackQueryFilter):
                        prefix = found.callback_data.__prefix__
                        if found.callback_data in MANAGER_CALLBACKS:
                            # the choice of organisation is made before there is a scope
                            assert is_gated(router) or found.callback_data is OrgCb, prefix
                            buttons.add(prefix)
    assert commands == MANAGER_COMMANDS
    assert buttons == {cb.__prefix__ for cb in MANAGER_CALLBACKS}


def test_no_handler_reads_the_servers_day() -> None:
    """Every "today" is the organisation's, from the injected clock."""
    for path in Path(handlers.__file__).parent.glob("*.py"):
        assert not re.search(r"date\.today\(|datetime\.now\(", path.read_text("utf-8")), path
