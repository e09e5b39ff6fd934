"""The managers' gate: every manager command and button is handled behind it (in the core's
routing, domain.conversation.dispatch), so a new view cannot forget the caller's scope, and no
handler reads the server's day."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from aiogram import Router

import handlers.telegram
from domain.conversation.dispatch import PRESSES, command_handler
from domain.conversation.io import Command
from domain.conversation.manager_keys import MANAGER_KEYS
from domain.i18n import create_translator
from handlers.telegram.common import manager_commands, member_commands
from handlers.telegram.keyboards import MANAGER_CALLBACKS
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


def test_the_telegram_adapter_routes_nothing_itself() -> None:
    """Every private message and press goes to the core's routing (domain.conversation
    .dispatch), where the managers' gate is: no handler here can take a manager's command
    or button past it."""
    handlers_of: dict[str, list[str]] = {"message": [], "callback_query": []}
    for router in walk(handlers.telegram.build_router()):
        for event, observer in router.observers.items():
            for handler in observer.handlers:
                if event in handlers_of:
                    assert not handler.filters, (router.name, event)
                    handlers_of[event].append(handler.callback.__qualname__)
                else:
                    assert event == "error", (router.name, event)
    assert handlers_of == {"message": ["on_message"], "callback_query": ["on_press"]}


def test_every_manager_command_and_button_is_behind_the_gate() -> None:
    manager_only = manager_only_commands()
    assert {"summary", "export", "roster"} <= manager_only
    for name in manager_only:
        routed = command_handler(Command(name), None)
        assert routed is not None and routed.__name__ == "manager_command", name
    for cb in MANAGER_CALLBACKS:
        route = PRESSES[cb.__prefix__]
        assert route.pressed.__name__ == "manager_pressed", cb.__prefix__
    assert {cb.__prefix__ for cb in MANAGER_CALLBACKS} == {k.prefix for k in MANAGER_KEYS}


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
