"""How fast a reminder round leaves: the sender against Telegram's limits, and its raw ceiling.

    .venv/bin/python -m bench.reminders
    .venv/bin/python -m bench.reminders --only raw --raw-members 20000 --raw-rate 5000

Two phases, each a fresh organisation of enrolled members in a SQLite file and one
`daka remind SLUG` run as a child process against the fake Telegram Bot API
(`tests.fakebot.FakeBotAPI`) that this process serves on 127.0.0.1 (so the fake's own work runs
on another core and is not charged to the sender):

1. limited: the fake enforces Telegram's limits (30 messages/s overall, 1/s per chat, 429
   beyond); SEND_RATE=--rate (25) and --members (1,000) members, about 40 s. Goal: achieved
   sends/s at least 0.95 x SEND_RATE, and not one 429.
2. raw: no limits, SEND_RATE=--raw-rate (5,000) and --raw-members (20,000) members. Goal: at
   least 1,000 sends/s.

Only the sending is timed: from the first sendMessage the fake receives to the last, as the
fake saw them; sends/s is (sent - 1) / that span (n sends evenly spaced at r/s span (n-1)/r).
Startup, migrations and the round itself (choosing who is reminded, filling the outbox) are
left out; "child CPU s" is the whole child process, round included. Every member must get
exactly one reminder, or the phase is reported as failed (exit 1); exit 2 when it cannot run.

`--py-spy FILE` samples the `daka remind` process of the raw phase (raw collapsed stacks are
summarised at the end; .svg gives a flame graph)."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import resource
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.checkin import start_py_spy, stop_py_spy, summarise_collapsed
from bench.common import (
    child_env,
    machine,
    parsed_options,
    run_main,
    start_bot,
    temporary_workdir,
)
from tests.fakebot import FakeBotAPI
from tests.storage.seeding import enrol_in_bulk, migrated_session

FIRST_ID = 600_000_001
CLASS_SIZE = 50
LIMITED_GOAL = 0.95  # of SEND_RATE, with Telegram's limits enforced
RAW_GOAL = 1000.0  # sends/s, without limits
STALL_S = 0.05  # a pause between two sends at least this long (and 3 spacings) is a stall
OUT = re.compile(r"due (\d+), sent (\d+), skipped (\d+), failed (\d+), unreachable (\d+)")


@dataclass
class Phase:
    name: str
    members: int
    send_rate: float
    limits: bool
    sent: int = 0
    distinct: int = 0
    seconds: float = 0.0
    http_429: int = 0
    child_cpu_s: float = 0.0
    stalls: int = 0
    stalled_s: float = 0.0
    printed: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return (self.sent - 1) / self.seconds if self.seconds > 0 and self.sent > 1 else 0.0

    @property
    def fraction(self) -> float:
        return self.per_s / self.send_rate

    @property
    def goal(self) -> str:
        if self.limits:
            return f">= {LIMITED_GOAL:.2f} x SEND_RATE, no 429"
        return f">= {RAW_GOAL:,.0f}/s"

    @property
    def met(self) -> bool:
        if self.failures:
            return False
        if self.limits:
            return self.fraction >= LIMITED_GOAL and self.http_429 == 0
        return self.per_s >= RAW_GOAL

    def as_json(self) -> dict[str, object]:
        return {
            "members": self.members,
            "send_rate": self.send_rate,
            "limits": self.limits,
            "sent": self.sent,
            "seconds": round(self.seconds, 3),
            "sends_per_s": round(self.per_s, 1),
            "fraction_of_send_rate": round(self.fraction, 4),
            "http_429": self.http_429,
            "stalls": self.stalls,
            "stalled_s": round(self.stalled_s, 3),
            "child_cpu_s": round(self.child_cpu_s, 2),
            "met": self.met,
            "failures": self.failures,
        }


def class_of(member: int) -> str:
    """The class of the member'th member: 50 a class, 20 classes a year."""
    year, room = divmod(member // CLASS_SIZE, 20)
    return f"年级{year + 1}/{room + 1}班"


async def seed(database_url: str, members: int) -> None:
    """Organisation "bench": `members` enrolled members in classes of 50."""
    async with migrated_session(database_url) as session:
        await enrol_in_bulk(
            session,
            slug="bench",
            members=[(class_of(i), FIRST_ID + i) for i in range(members)],
            now=datetime.now(UTC),
        )
        await session.commit()


async def run_phase(phase: Phase, workdir: Path, opts: Options, *, spy: Path | None) -> Phase:
    home = workdir / phase.name
    home.mkdir()
    database_url = f"sqlite+aiosqlite:///{home / 'daka.db'}"
    await seed(database_url, phase.members)
    async with FakeBotAPI() as server:
        if phase.limits:
            server.enforce_limits(global_per_second=30, per_chat_per_second=1)
        env = child_env(
            {
                "BOT_TOKEN": server.token,
                "TELEGRAM_API_URL": server.url,
                "DATABASE_URL": database_url,
                "SEND_RATE": f"{phase.send_rate:g}",
                "LOG_LEVEL": "WARNING",
            }
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = await start_bot(
            "remind", [sys.executable, "-m", "bot", "remind", "bench"], env=env, workdir=home
        )
        profiler = None
        if spy is not None:
            profiler = await start_py_spy(child.pid, spy, 100, ("--nonblocking",), home)
        timeout = opts.timeout + phase.members / phase.send_rate
        try:
            await asyncio.wait_for(child.process.wait(), timeout)
        except TimeoutError:
            phase.failures.append(f"`daka remind` did not finish within {timeout:.0f} s")
        finally:
            code = await child.stop()  # SIGTERM if it is still running; closes its log
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if profiler is not None:
                await stop_py_spy(profiler)
        phase.child_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        phase.printed = child.log_tail(5)
        if code != 0:
            phase.failures.append(f"`daka remind` exited with {code}: {child.log_tail()}")
        sends = [c for c in server.calls if c.method == "sendMessage"]
        ok = [c for c in sends if c.ok]
        phase.sent = len(ok)
        phase.http_429 = sum(c.status == 429 for c in sends)
        per_chat = Counter(c.chat_id for c in ok)
        phase.distinct = len(per_chat)
        if ok:
            phase.seconds = ok[-1].at - ok[0].at
            gaps = [b.at - a.at for a, b in itertools.pairwise(ok)]
            long = [g for g in gaps if g >= max(STALL_S, 3 / phase.send_rate)]
            phase.stalls, phase.stalled_s = len(long), sum(long)
        if phase.sent != phase.members or phase.distinct != phase.members:
            phase.failures.append(
                f"{phase.sent} reminders reached {phase.distinct} of {phase.members} members"
            )
        match = OUT.search(phase.printed)
        if match is None or int(match.group(2)) != phase.members:
            phase.failures.append(f"`daka remind` said: {phase.printed.strip()!r}")
    return phase


@dataclass
class Options:
    members: int
    rate: float
    raw_members: int
    raw_rate: float
    only: str
    timeout: float
    json: bool
    keep: bool
    py_spy: Path | None


def table(phases: Sequence[Phase]) -> str:
    head = (
        "phase",
        "members",
        "SEND_RATE",
        "limits",
        "sent",
        "seconds",
        "sends/s",
        "of SEND_RATE",
        "429s",
        "stalls",
        "child CPU s",
        "goal",
        "met",
    )
    rows = [head]
    for p in phases:
        rows.append(
            (
                p.name,
                f"{p.members:,}",
                f"{p.send_rate:g}",
                "30/s, 1/s/chat" if p.limits else "off",
                f"{p.sent:,}",
                f"{p.seconds:.2f}",
                f"{p.per_s:,.1f}",
                f"{p.fraction:.3f}",
                str(p.http_429),
                f"{p.stalls}: {p.stalled_s:.2f} s",
                f"{p.child_cpu_s:.1f}",
                p.goal,
                "yes" if p.met else "NO",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def run(opts: Options, argv: Sequence[str]) -> int:
    phases = []
    if opts.only in ("both", "limited"):
        phases.append(Phase("limited", opts.members, opts.rate, limits=True))
    if opts.only in ("both", "raw"):
        phases.append(Phase("raw", opts.raw_members, opts.raw_rate, limits=False))
    with temporary_workdir("daka-bench-remind-", keep=opts.keep) as workdir:
        for phase in phases:
            spy = opts.py_spy if phase.name == "raw" or opts.only == "limited" else None
            await run_phase(phase, workdir, opts, spy=spy)
    info = machine()
    print(
        f"machine: {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
        f"{info['platform']}, event loop {info['event loop']}"
    )
    print("command: " + shlex.join([".venv/bin/python", "-m", "bench.reminders", *argv]))
    print(table(phases))
    print(
        "sends/s: (sent - 1) / (last - first sendMessage, as the fake received them); "
        "child CPU: the whole `daka remind` process (start, round and sending; with --py-spy, "
        "py-spy's too)"
    )
    print(
        f"stalls: pauses between two sends of at least {STALL_S * 1000:.0f} ms (and 3 send "
        "spacings), their number and total length"
    )
    for phase in phases:
        for failure in phase.failures[:3]:
            print(f"{phase.name} FAILED: {failure}", file=sys.stderr)
    if opts.py_spy is not None and opts.py_spy.exists():
        if opts.py_spy.suffix in (".svg", ".json"):
            print(f"py-spy profile written to {opts.py_spy}")
        else:
            print(f"py-spy profile ({opts.py_spy}):")
            print(summarise_collapsed(opts.py_spy))
    if opts.json:
        print(json.dumps({"machine": info, **{p.name: p.as_json() for p in phases}}))
    return 1 if any(p.failures for p in phases) else 0


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.reminders",
        description="Sends/s of a reminder round, with Telegram's limits and without.",
    )
    parser.add_argument("--members", type=int, default=1000, help="limited phase (1000)")
    parser.add_argument("--rate", type=float, default=25.0, help="its SEND_RATE (25)")
    parser.add_argument("--raw-members", type=int, default=20_000, help="raw phase (20000)")
    parser.add_argument("--raw-rate", type=float, default=5000.0, help="its SEND_RATE (5000)")
    parser.add_argument("--only", choices=("both", "limited", "raw"), default="both")
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds beyond members/rate (120)"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, logs)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record `daka remind` of the raw phase (or of --only limited) with py-spy",
    )
    args = parser.parse_args(argv)
    if min(args.members, args.raw_members) < 2 or min(args.rate, args.raw_rate) <= 0:
        parser.error("members must be at least 2 and rates above 0")
    return parsed_options(Options, args, py_spy=args.py_spy.resolve() if args.py_spy else None)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run_main(run(parse_args(args), args))


if __name__ == "__main__":
    raise SystemExit(main())
