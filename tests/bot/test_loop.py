"""The event loop daka's commands run on (bot/loop.py): uvloop's unless asked otherwise."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest
import uvloop

from bot import loop
from bot.config import Settings


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_commands_run_on_uvloop_by_default() -> None:
    assert isinstance(loop.run(_running_loop()), uvloop.Loop)
    assert Settings(_env_file=None).event_loop == "uvloop"


def test_event_loop_asyncio_runs_on_asyncio_own_loop() -> None:
    used = loop.run(_running_loop(), "asyncio")
    assert isinstance(used, asyncio.BaseEventLoop) and not isinstance(used, uvloop.Loop)
    assert Settings(_env_file=None, event_loop="ASYNCIO").event_loop == "asyncio"


def test_without_uvloop_installed_the_loop_is_asyncio_own(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.import_module

    def no_uvloop(name: str, *args: Any) -> Any:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real(name, *args)

    monkeypatch.setattr(loop.importlib, "import_module", no_uvloop)
    caplog.set_level("INFO", logger="bot.loop")
    used = loop.run(_running_loop())
    assert not isinstance(used, uvloop.Loop)
    assert "uvloop is not installed" in caplog.text


def test_a_process_without_settings_names_its_loop_from_event_loop() -> None:
    assert loop.named(None) == "uvloop"
    assert loop.named("") == "uvloop"
    assert loop.named(" Asyncio ") == "asyncio"
    assert loop.named("uvloop") == "uvloop"


def test_the_result_and_exceptions_of_the_coroutine_come_back() -> None:
    async def fails() -> None:
        raise LookupError("boom")

    async def answers() -> int:
        await asyncio.sleep(0)
        return 42

    assert loop.run(answers()) == 42
    with pytest.raises(LookupError, match="boom"):
        loop.run(fails())
