"""Files made from the database in a process of their own: `python -m storage.makers` reads one job
from stdin (JSON: the maker as `module:function`, the database URL, its arguments, the output
path), makes the file and prints one JSON line: `{"rows": N}`, or `{"refused": why}` when the file
cannot be made (more rows than a worksheet holds, say).

The bot makes its exports this way (`handlers.telegram.uploads.Upload`): a thread of its own would
share the GIL with the event loop, which wants it back after every wake-up and waited up to 5 ms
each time, so the others' replies took ten times as long while an export was made. A process of its
own shares nothing, runs at a lower priority than the bot (`NICENESS`), and gives all its memory
back when it exits. It is a fresh interpreter started with `-m`, not a `multiprocessing` child:
nothing of the bot's (aiogram, its threads' locks, its main script) is loaded or run again. The bot
starts it as `python -P -m bot.makers`, which installs the bot's performance shims (the one-trip
SQLite adapter, the XLSX row splice: `bot.shims`) and then runs `main` here."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

MAKERS: dict[str, str] = {"export": "storage.export:make_export"}  # name -> module:function
NICENESS: Final = 5  # +10 starved a 100k export to a minute on a busy 2-core machine
BOT_ENTRY: Final = "bot.makers"  # `python -P -m` this: this module with the bot's shims

log = logging.getLogger(__name__)

# One file made at a time by the process, whatever the channel and the number of chats waiting
# for one: an export of 100,000 rows holds some 100 MiB while it is made, and several at once
# would add up. The thread only waits for the process that makes it (`make_in_child`).
_making = ThreadPoolExecutor(1, thread_name_prefix="daka-making")


async def make_file(
    maker: str, args: Mapping[str, Any], name: str, database_url: str | None
) -> tuple[str, int] | None:
    """Make a file with the maker named `maker` (`MAKERS`), in a process of its own started
    with the bot's entry (`BOT_ENTRY`): the path of a temporary file (with `name`'s suffix,
    the caller's to remove) and its rows, or None when it cannot be made (said in the log)."""
    module = MAKERS.get(maker)
    if module is None or database_url is None:
        log.warning("file %r cannot be made here", maker)
        return None
    handle, path = tempfile.mkstemp(prefix="daka-made-", suffix=os.path.splitext(name)[1])
    os.close(handle)
    loop = asyncio.get_running_loop()
    try:
        rows = await loop.run_in_executor(
            _making, make_in_child, module, database_url, args, path, BOT_ENTRY
        )
    except ValueError as exc:
        log.info("file %r not made: %s", maker, exc)
    except Exception:
        log.exception("file %r failed", maker)
    except BaseException:  # cancelled (the bot is stopping): leave no file behind
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    else:
        return path, rows
    with contextlib.suppress(OSError):
        os.unlink(path)
    return None


def make_in_child(
    maker: str, url: str, args: Mapping[str, Any], path: str, entry: str = "storage.makers"
) -> int:
    """Run `maker` (`module:function`, called as `maker(url, args, path) -> rows`) in a process
    of its own and wait for it: the rows written; ValueError when it refused, RuntimeError when
    the process failed (its traceback went to stderr). The URL travels on stdin, not argv.
    `entry`: the module the process runs, this one or one that calls its `main` after setting
    the process up (the bot's, `bot.makers`, installs its shims first)."""
    job = json.dumps({"maker": maker, "url": url, "args": dict(args), "path": path})
    # -P: the working directory (the data volume, in the image) is not searched for modules.
    done = subprocess.run(
        [sys.executable, "-P", "-m", entry],
        input=job,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the process making {maker} exited with {done.returncode}")
    answer = json.loads(lines[-1])
    if "refused" in answer:
        raise ValueError(str(answer["refused"]))
    return int(answer["rows"])


def run(job: Mapping[str, Any]) -> dict[str, Any]:
    module, _, name = str(job["maker"]).partition(":")
    maker = getattr(importlib.import_module(module), name)
    try:
        return {"rows": int(maker(str(job["url"]), job["args"], str(job["path"])))}
    except ValueError as exc:
        return {"refused": str(exc)}


def main() -> int:
    os.nice(NICENESS)
    print(json.dumps(run(json.loads(sys.stdin.read()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
