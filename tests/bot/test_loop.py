"""The event loop daka's commands run on (bot/loop.py): uvloop's for the WeCom callback server,
Python's own for the rest, unless EVENT_LOOP says otherwise."""

from __future__ import annotations

import argparse
import asyncio
import importlib
from typing import Any

import pytest
import uvloop

from bot import loop
from bot.config import Settings


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_auto_runs_the_wecom_server_on_uvloop_and_the_rest_on_python_own() -> None:
    assert Settings(_env_file=None).event_loop == "auto"
    assert loop.chosen("auto", wecom=True) == "uvloop"
    assert loop.chosen(None, wecom=True) == "uvloop"
    assert loop.chosen("", wecom=False) == "asyncio"
    assert loop.chosen(" AUTO ", wecom=False) == "asyncio"


def test_event_loop_chooses_one_loop_for_every_command() -> None:
    for wecom in (True, False):
        assert loop.chosen("asyncio", wecom=wecom) == "asyncio"
        assert loop.chosen("UVLOOP", wecom=wecom) == "uvloop"
    assert Settings(_env_file=None, event_loop="ASYNCIO").event_loop == "asyncio"


def test_each_loop_is_the_one_run() -> None:
    assert isinstance(loop.run(_running_loop(), "uvloop"), uvloop.Loop)
    used = loop.run(_running_loop(), "asyncio")
    assert isinstance(used, asyncio.BaseEventLoop) and not isinstance(used, uvloop.Loop)


def test_without_uvloop_installed_the_loop_is_python_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.import_module

    def no_uvloop(name: str, *args: Any) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real(name, *args)

    monkeypatch.setattr(loop.importlib, "import_module", no_uvloop)
    caplog.set_level("INFO", logger="bot.loop")
    used = loop.run(_running_loop(), "uvloop")
    assert not isinstance(used, uvloop.Loop)
    assert "uvloop is not installed" in caplog.text


def test_the_result_and_exceptions_of_the_coroutine_come_back() -> None:
    async def fails() -> None:
        raise LookupError("boom")

    async def answers() -> int:
        await asyncio.sleep(0)
        return 42

    assert loop.run(answers(), "uvloop") == 42
    with pytest.raises(LookupError, match="boom"):
        loop.run(fails(), "asyncio")


@pytest.mark.parametrize(
    ("setting", "wecom_server", "telegram_bot"),
    [
        ("auto", "uvloop", "asyncio"),
        ("uvloop", "uvloop", "uvloop"),
        ("asyncio", "asyncio", "asyncio"),
    ],
)
def test_each_command_runs_on_the_loop_event_loop_gives_it(
    monkeypatch: pytest.MonkeyPatch, setting: str, wecom_server: str, telegram_bot: str
) -> None:
    """`daka wecom` and a WeCom-only `daka run` on uvloop by default, the Telegram bot on
    Python's loop (its memory goal), both as EVENT_LOOP says when it says."""
    from bot.cli import run as run_cli
    from bot.cli import wecom as wecom_cli
    from domain.clock import SystemClock

    used: list[str] = []

    def recorded(main: Any, name: str) -> None:
        main.close()
        used.append(name)

    monkeypatch.setattr(wecom_cli, "run_loop", recorded)
    monkeypatch.setattr(run_cli, "run_loop", recorded)
    clock = SystemClock()
    args = argparse.Namespace(host="127.0.0.1", port=0, with_scheduler=False, wecom_port=None)
    only_wecom = Settings(
        _env_file=None,
        event_loop=setting,
        wecom_corp_id="wwdaka0000000001",
        wecom_agent_id=1000002,
        wecom_secret="daka-secret",
        wecom_token="dakaToken2026",
        wecom_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    )
    telegram = Settings(_env_file=None, event_loop=setting, bot_token="42:TEST")
    wecom_cli.serve(args, only_wecom, clock)
    run_cli.run_deployment(args, only_wecom, clock)
    run_cli.run_deployment(args, telegram, clock)
    assert used == [wecom_server, wecom_server, telegram_bot]
