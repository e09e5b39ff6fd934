"""The managers' gate: every manager command and button is handled behind it, so a new view
cannot forget the caller's scope, and no handler reads the server's day."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from pathlib import Path

from aiogram import Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackQueryFilter

import handlers.telegram
from domain.i18n import create_translator
from handlers.telegram.common import manager_commands, member_commands
from handlers.telegram.gate import is_gated
from handlers.telegram.keyboards import MANAGER_CALLBACKS, OrgCb
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, reply_containing
from tests.handlers.test_checkin import next_alert


def walk(router: Router) -> Iterator[Router]:
    yield router
    for child in router.sub_routers:
        yield from walk(child)


def manager_only_commands() -> set[str]:
    """The commands of the managers' menu that members do not have."""
    with create_translator().context():
        return {c.command for c in manager_commands()} - {c.command for c in member_commands()}


def test_every_handler_that_takes_a_scope_is_behind_the_gate() -> None:
    """A handler gets `scope` from the gate alone (None for members otherwise): whichever
    handler declares it must be a message or button handler of a gated router."""
    scoped: list[str] = []
    for router in walk(handlers.telegram.build_router()):
        for event, observer in router.observers.items():
            for handler in observer.handlers:
                if "scope" not in inspect.signature(handler.callback).parameters:
                    continue
                where = f"{router.name}.{event}: {handler.callback.__qualname__}"
                assert event in ("message", "callback_query") and is_gated(router), where
                scoped.append(where)
    assert scoped  # the managers' views were found at all


def test_every_manager_command_and_button_is_behind_the_gate() -> None:
    manager_only = manager_only_commands()
    assert {"summary", "export", "roster"} <= manager_only
    commands: set[str] = set()
    buttons: set[str] = set()
    for router in walk(handlers.telegram.build_router()):
        for observer in (router.message, router.callback_query):
            for handler in observer.handlers:
                for each in handler.filters or []:
                    found = each.callback
                    if isinstance(found, Command):
                        names = {str(c) for c in found.commands} & manager_only
                        assert not names or is_gated(router), (router.name, names)
                        commands |= names
                    if isinstance(found, CallbackQueryFilter):
                        prefix = found.callback_data.__prefix__
                        if found.callback_data in MANAGER_CALLBACKS:
                            # the choice of organisation is made before there is a scope
                            assert is_gated(router) or found.callback_data is OrgCb, prefix
                            buttons.add(prefix)
    assert commands == manager_only  # each is handled, and only behind the gate
    assert buttons == {cb.__prefix__ for cb in MANAGER_CALLBACKS}


def test_no_handler_reads_the_servers_day() -> None:
    """Every "today" is the organisation's, from the injected clock."""
    for path in Path(handlers.__file__).parent.glob("*.py"):
        assert not re.search(r"date\.today\(|datetime\.now\(", path.read_text("utf-8")), path


async def test_a_refused_managers_button_leaves_a_members_check_in_as_it_was(
    daka: Daka, server: FakeBotAPI
) -> None:
    """A member halfway through the form presses a managers' button (stale, or forged): the
    gate refuses it, and the next answer still goes to the form, not to a draft thrown away."""
    await daka.org()
    member = server.user(701, first_name="三", language_code="zh-hans")
    await daka.enrol(member, "2024001", "张三", await daka.invite())
    member.drain()
    assert "请发送您当前所在的位置" in (await member.ask("/checkin")).text
    member.send_location(39.9087, 116.3975, accuracy=12.5)
    question = await reply_containing(member, "请输入您今天测量的体温")
    member.press(question, "nav:0:2026-11-28:0")
    assert (await next_alert(member)).text == "此按钮已失效。"
    assert "您今天是否有以下症状" in (await member.ask("36.5")).text
