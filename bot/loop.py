"""The event loop Daka's commands run on: uvloop's (libuv) where it is installed, as it is with
the lock files on Linux and macOS; asyncio's own with `EVENT_LOOP=asyncio`, or where uvloop is
not installed (Windows).

Measured on the WeCom callback path (`bench.wecom`, docs/benchmarks.md), uvloop spends some 12%
less CPU per callback: the loop's own work per wake-up (every aiosqlite answer, every HTTP
request and response) is a large part of a turn. The tests run in-process on asyncio's loop
(pytest-asyncio), and the CLI and crash tests start `daka` on uvloop's, so both are covered."""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
LoopName = Literal["uvloop", "asyncio"]


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


def named(value: str | None) -> LoopName:
    """The loop an `EVENT_LOOP` value names (for processes that read no settings, such as the
    benchmarks' baselines, which run on the loop daka runs on); uvloop by default."""
    return "asyncio" if (value or "").strip().lower() == "asyncio" else "uvloop"


def run(main: Coroutine[Any, Any, T], loop: LoopName = "uvloop") -> T:
    """`asyncio.run(main)` on the event loop `loop` names (see `loop_factory`)."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
