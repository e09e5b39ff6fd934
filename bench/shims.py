"""What each performance shim (`bot.shims`) buys, each measured with and without it.

    .venv/bin/python -m bench.shims                 # three measurements, on and off, 3 times each
    .venv/bin/python -m bench.checkin --members 400 --bot-cmd \\
        ".venv/bin/python -m bench.shims --run-bot-without heap"

A shim decides once per process, so every figure comes from a fresh interpreter, alternately
with the shims and with `DAKA_SHIMS=off`, back to back; the medians are printed with the load
average (on a busy machine the CPU times are inflated, their ratios less so):

- lazy aiogram models: `import bot.app` (what the bot imports before its first update): the
  child's peak RSS and CPU seconds.
- one-trip SQLite adapter: 5,000 look-ups by primary key on one connection: CPU µs per
  statement (every thread of the process: the hand-offs cost both the event loop and
  aiosqlite's thread) and wall µs.
- XLSX row splice: `write_xlsx` of --rows detail rows of 16 text cells (export-like): seconds.

Heap settling acts on a whole bot; `--run-bot-without NAME` runs `daka run` with only that shim
stepping aside (`sqlite`, `heap`), for `bench.checkin --bot-cmd`.
The lazy models alone: `DAKA_EAGER_AIOGRAM=1`."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Sequence

from bench.common import REPO_ROOT

LAZY_MODELS = """
import resource, time
started = time.process_time()
import bot.app
print(json.dumps({"cpu_s": time.process_time() - started,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ONE_TRIP = """
import asyncio, tempfile, time
import bot
from sqlalchemy import text
from storage.db import create_engine

async def main() -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/t.db")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        names = [{"n": str(i)} for i in range(1000)]
        await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), names)
    look_up = text("SELECT name FROM t WHERE id = :id")
    async with engine.connect() as conn:
        for i in range(200):  # warm-up
            (await conn.execute(look_up, {"id": i + 1})).all()
        n = 5000
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            (await conn.execute(look_up, {"id": i % 1000 + 1})).all()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"adapter": type(engine.dialect.dbapi).__name__,
                      "cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}))
    await engine.dispose()

asyncio.run(main())
"""

SPLICE = """
import time
import bot
from domain.present.sheets import write_xlsx

rows = [[f"{i:06d}", "2026-11-28", "工程学院/一班", f"学生{i}", "reported",
         "2026-11-28T09:05:07+08:00", "", "39.9042,116.4074", "12.0", "36.5", "none", "no",
         "", "AgACAgUAAxkBAAIBfile", "x" * (i % 7), "学院"] for i in range(ROWS)]
wall, cpu = time.perf_counter(), time.process_time()
data = write_xlsx([f"q{j}" for j in range(16)], rows, [])
print(json.dumps({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
                  "mib": len(data) / 2**20}))
"""


def child(code: str, *, off: bool) -> dict[str, float | str]:
    """Run `code` in a fresh interpreter at the repository root, the shims on or off."""
    env = {k: v for k, v in os.environ.items() if k not in {"DAKA_SHIMS", "DAKA_EAGER_AIOGRAM"}}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if off:
        env["DAKA_SHIMS"] = "off"
    done = subprocess.run(
        [sys.executable, "-c", "import json\n" + textwrap.dedent(code)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(name: str, code: str, repeat: int) -> None:
    runs: dict[bool, list[dict[str, float | str]]] = {False: [], True: []}
    for _ in range(repeat):
        for off in (False, True):  # back to back
            runs[off].append(child(code, off=off))
    print(f"{name} (median of {repeat}; load {os.getloadavg()[0]:.1f}):")
    for off in (False, True):
        figures = {
            key: statistics.median(float(run[key]) for run in runs[off])
            for key, value in runs[off][0].items()
            if not isinstance(value, str)
        }
        labels = [str(value) for value in runs[off][0].values() if isinstance(value, str)]
        shown = ", ".join(f"{key} {value:.3g}" for key, value in figures.items())
        print(f"  {'DAKA_SHIMS=off' if off else 'shims on':14}  {shown}  {' '.join(labels)}")


def run_bot_without(name: str) -> int:
    """`daka run` with the one shim `name` stepping aside, the others on."""
    import bot.app
    import storage.db

    if name == "sqlite":
        storage.db.use_aiosqlite_module(None)
    elif name == "heap":
        bot.app.settle_heap = lambda: None
    from bot.cli import main as daka

    return daka(["run"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shims", description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="runs each way (3)")
    parser.add_argument("--rows", type=int, default=100_000, help="workbook rows (100,000)")
    parser.add_argument("--run-bot-without", choices=["sqlite", "heap"])
    opts = parser.parse_args(argv)
    if opts.run_bot_without:
        return run_bot_without(opts.run_bot_without)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    measure("lazy aiogram models: import bot.app", LAZY_MODELS, opts.repeat)
    measure("one-trip SQLite: a look-up by primary key", ONE_TRIP, opts.repeat)
    splice = SPLICE.replace("ROWS", str(opts.rows))
    measure(f"XLSX splice: write_xlsx of {opts.rows:,} rows", splice, opts.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
