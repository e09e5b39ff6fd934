"""The event loop Daka's commands run on. `EVENT_LOOP=auto` (the default): uvloop's (libuv) for
the WeCom callback server (`daka wecom`, or `daka run` serving WeCom only), Python's own for
the rest; `uvloop` or `asyncio` choose one for every command. Without uvloop installed
(Windows) every command runs on Python's own.

Measured (docs/benchmarks.md, eighth session): on the WeCom callback path uvloop spends 7-10%
less CPU per callback, since the loop's own work per wake-up (every aiosqlite answer, every HTTP
request and response) is a large part of a turn. The Telegram bot gains about as much, but
uvloop's buffers and module add 2-4 MiB to its resident memory, which takes it past its goal of
150 MiB with 100,000 members: it stays on Python's loop unless asked. uvloop's timers keep
whole milliseconds (the sender's rate bucket allows for it: scheduler/pacing.py). The tests run
in-process on Python's loop (pytest-asyncio); the WeCom process tests start `daka wecom` on
uvloop's, so both are covered."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
LoopName = Literal["uvloop", "asyncio"]
Setting = Literal["auto", "uvloop", "asyncio"]


def chosen(setting: str | None, *, wecom: bool) -> LoopName:
    """The loop an `EVENT_LOOP` value (None or "auto": the default) names for a command;
    `wecom`: the command serves WeCom's callbacks."""
    value = (setting or "auto").strip().lower()
    if value == "asyncio":
        return "asyncio"
    if value == "uvloop":
        return "uvloop"
    return "uvloop" if wecom else "asyncio"


def loop_factory(name: LoopName) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when `name` asks for it and it is installed; None (asyncio's own)
    otherwise."""
    if name != "uvloop":
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        log.info("uvloop is not installed: running on asyncio's own event loop")
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], loop: LoopName) -> T:
    """`asyncio.run(main)` on the event loop `loop` names (see `loop_factory`)."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
