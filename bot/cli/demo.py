"""`daka demo`: try Daka without Telegram: the real bot on a local Bot API, and a web chat."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.common import Command, Subparsers, UsageError
from bot.loop import run as run_loop
from domain.clock import Clock

if TYPE_CHECKING:
    from bot.demo.runner import Demo


def add_parsers(sub: Subparsers) -> None:
    demo = sub.add_parser(
        "demo",
        help="try Daka in a browser: the real bot, a local Bot API and a sample school",
        description="Runs the real bot against a Bot API server on this machine (nothing is "
        "sent to Telegram) and serves a web chat on 127.0.0.1 where you play a sample "
        "school's students and teachers side by side.",
    )
    demo.add_argument("--port", type=int, default=8080, help="port of the web chat")
    demo.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="keep the demo's SQLite database here and reuse it next time "
        "(default: a temporary folder, removed on exit)",
    )
    demo.add_argument(
        "--language",
        choices=["zh", "en"],
        default="zh",
        help="of the sample school and its people",
    )


def serve(args: argparse.Namespace, clock: Clock) -> None:
    """Run the demo until Ctrl+C."""
    if not 0 <= args.port <= 65535:
        raise UsageError("demo: --port must be from 0 to 65535")
    run_loop(_serve(args, clock), "asyncio")


async def _serve(args: argparse.Namespace, clock: Clock) -> None:
    from bot.demo.runner import Demo, PortInUse

    demo = Demo(port=args.port, data=args.data, language=args.language, clock=clock)
    root = logging.getLogger()
    level = root.level
    if "LOG_LEVEL" not in os.environ:
        root.setLevel(logging.WARNING)  # the web chat is the output here, not every update
    try:
        await _run(demo, args)
    except PortInUse as exc:
        raise UsageError(f"demo: {exc}; choose another with --port") from None
    finally:
        root.setLevel(level)


async def _run(demo: Demo, args: argparse.Namespace) -> None:
    await demo.start()
    try:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, demo.request_stop)
        where = f"data in {demo.folder}" + (" (removed on exit)" if args.data is None else "")
        print(f"Daka demo: open {demo.url} in a browser ({where}); Ctrl+C stops it", flush=True)
        await demo.wait()
    finally:
        await demo.stop()


COMMANDS: dict[tuple[str, str | None], Command] = {}
