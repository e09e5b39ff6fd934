"""What the benchmarks share: options and exit code of the command line, bot subprocesses, CPU
accounting, waiting for replies, the result of a phase and the table that prints it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from bot.loop import chosen
from bot.loop import run as run_loop
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage

if TYPE_CHECKING:
    from datetime import datetime

    from storage.repo import Repo

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0
KILL_WAIT_S = 5.0
# Our own packages: profile frames from these files are "our code".
OUR_PACKAGES = ("bot", "handlers", "storage", "domain", "scheduler")

OptionsT = TypeVar("OptionsT")


class BenchError(Exception):
    """The benchmark could not run (a bot that never polled, a seed that failed)."""


class ConversationError(Exception):
    """One simulated member's conversation went wrong; the message says where and why."""


def parsed_options(cls: type[OptionsT], args: argparse.Namespace, **converted: Any) -> OptionsT:
    """Options with one field per argument, named as its `dest`, so a new option is one line;
    `converted` gives the fields whose value is not the argument's as parsed."""
    return cls(**{**vars(args), **converted})


def run_main(main: Coroutine[Any, Any, int], *, wecom: bool = False) -> int:
    """A bench's exit code: 2 when it could not run (`BenchError`), 130 on ^C as in a shell."""
    try:
        return run_loop(main, chosen(os.environ.get("EVENT_LOOP"), wecom=wecom))  # as the bot's
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def temporary_workdir(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A run's databases and logs, removed afterwards unless --keep asks to look at them."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield workdir
    finally:
        if keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- subprocesses
@dataclass
class BotProcess:
    """A bot running as a child process, its output going to a log file."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def log_problems(self) -> Counter[str]:
        """How many ERROR/CRITICAL/Traceback lines the bot logged (it runs at WARNING)."""
        found: Counter[str] = Counter()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return found
        for line in text.splitlines():
            for word in ("ERROR", "CRITICAL", "Traceback"):
                if word in line:
                    found[word] += 1
        return found

    async def stop(self) -> int:
        """SIGTERM, then SIGKILL if it is still running after `STOP_GRACE_S`."""
        proc = self.process
        try:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
                except TimeoutError:
                    print(
                        f"warning: {self.name} ignored SIGTERM for {STOP_GRACE_S:.0f} s; killed",
                        file=sys.stderr,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await asyncio.wait_for(proc.wait(), KILL_WAIT_S)
        finally:
            self._log.close()
        return proc.returncode if proc.returncode is not None else -1


def child_env(overrides: dict[str, str]) -> dict[str, str]:
    """The environment for a bot process: ours, minus settings that would change what is
    measured (Redis FSM storage, admins, a proxy), plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "ADMIN_IDS", "BOT_USERNAME", "DATABASE_URL")
        and not k.lower().endswith("_proxy")
    }
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


async def start_bot(
    name: str, argv: Sequence[str], *, env: dict[str, str], workdir: Path
) -> BotProcess:
    """Start `argv` in `workdir` (no stray .env is read there) with output to a log file."""
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    except BaseException:
        log.close()
        raise
    return BotProcess(name=name, process=process, log_path=log_path, _log=log)


async def wait_until_polling(server: FakeBotAPI, bot: BotProcess, wait_s: float) -> None:
    """Until the bot parks a long poll; fails early (with its log) if it exits first."""
    polled = asyncio.ensure_future(
        server.wait_for(lambda: server.polling, wait_s, f"{bot.name} never polled")
    )
    exited = asyncio.ensure_future(bot.process.wait())
    try:
        await asyncio.wait({polled, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
    if polled.done():
        try:
            polled.result()
        except AssertionError:
            raise BenchError(
                f"{bot.name} did not poll within {wait_s:.0f} s; its log:\n{bot.log_tail()}"
            ) from None
        return
    polled.cancel()
    with contextlib.suppress(asyncio.CancelledError, AssertionError):
        await polled
    raise BenchError(
        f"{bot.name} exited with code {bot.process.returncode} before polling; its log:\n"
        f"{bot.log_tail()}"
    )


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (all its threads), from /proc; None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # After the command name: state is field 3; utime and stime are fields 14 and 15.
    try:
        ticks = int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def add_latency(server: FakeBotAPI, seconds: float) -> None:
    """Make every Bot API method but getUpdates answer `seconds` late, like the round trip to
    Telegram's servers (the fake answers in well under a millisecond)."""
    if seconds <= 0:
        return
    methods = server._methods  # the fake has no latency knob; wrap its method table
    for key, (name, method) in list(methods.items()):
        if key != "getupdates":
            methods[key] = (name, _delayed(method, seconds))


def _delayed(
    method: Callable[[dict[str, Any]], Awaitable[Any]], seconds: float
) -> Callable[[dict[str, Any]], Awaitable[Any]]:
    async def call(params: dict[str, Any]) -> Any:
        await asyncio.sleep(seconds)
        return await method(params)

    return call


# --------------------------------------------------------------------------- conversations
async def expect(
    user: FakeUser, wanted: Callable[[SentMessage], bool], what: str, wait_s: float
) -> SentMessage:
    """Read the user's replies until one is `wanted` (skipping acknowledgements and edits),
    failing with the transcript after `wait_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise ConversationError(
                f"user {user.id}: no {what} within {wait_s:.0f} s\n{user.transcript()}"
            )
        try:
            reply = await user.next_reply(remaining)
        except AssertionError:
            raise ConversationError(
                f"user {user.id}: no {what} within {wait_s:.0f} s\n{user.transcript()}"
            ) from None
        if wanted(reply):
            return reply


def containing(*needles: str) -> Callable[[SentMessage], bool]:
    return lambda message: any(n in message.text for n in needles)


# --------------------------------------------------------------------------- results
@dataclass
class PhaseResult:
    """What one phase measured. `seconds` runs from the first push to the last completed
    conversation's final reply."""

    name: str
    members: int
    rounds: int
    conversations: int
    completed: int
    updates: int
    seconds: float
    bot_cpu_s: float | None
    bench_cpu_s: float
    api_calls: int
    api_errors: int
    api_methods: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    problems: dict[str, int] = field(default_factory=dict)
    verified: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.conversations - self.completed

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds if self.seconds > 0 else 0.0

    @property
    def conversations_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else 0.0

    def api_per_update(self) -> str:
        """Bot API requests per update by method (getUpdates left out)."""
        if not self.updates:
            return "-"
        counts = {k: v for k, v in self.api_methods.items() if k != "getUpdates"}
        total = sum(counts.values()) / self.updates
        parts = [
            f"{name} {n / self.updates:.2f}"
            for name, n in sorted(counts.items(), key=lambda kv: -kv[1])
        ]
        return f"{total:.2f} ({', '.join(parts)})"

    @property
    def bot_cpu_ms_per_update(self) -> float | None:
        if self.bot_cpu_s is None or not self.updates:
            return None
        return 1000 * self.bot_cpu_s / self.updates

    def as_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "rounds": self.rounds,
            "conversations": self.conversations,
            "completed": self.completed,
            "lost": self.lost,
            "updates": self.updates,
            "seconds": round(self.seconds, 3),
            "updates_per_s": round(self.updates_per_s, 1),
            "conversations_per_s": round(self.conversations_per_s, 2),
            "bot_cpu_s": None if self.bot_cpu_s is None else round(self.bot_cpu_s, 2),
            "bot_cpu_ms_per_update": _round(self.bot_cpu_ms_per_update, 3),
            "bench_cpu_s": round(self.bench_cpu_s, 2),
            "api_calls": self.api_calls,
            "api_errors": self.api_errors,
            "api_methods": self.api_methods,
            "bot_log_problems": self.problems,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def machine(*, wecom: bool = False) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        # every process's, the baselines' and the bench's own too
        "event loop": chosen(os.environ.get("EVENT_LOOP"), wecom=wecom),
    }


def table(results: Sequence[PhaseResult]) -> str:
    """The results as a fixed-width table."""
    head = (
        "bot",
        "members",
        "updates",
        "seconds",
        "updates/s",
        "conv/s",
        "lost",
        "bot CPU s",
        "bot CPU ms/upd",
        "bench CPU s",
    )
    rows = [head]
    for r in results:
        ms = r.bot_cpu_ms_per_update
        rows.append(
            (
                r.name,
                str(r.members) if r.rounds == 1 else f"{r.members}x{r.rounds}",
                str(r.updates),
                f"{r.seconds:.2f}",
                f"{r.updates_per_s:.1f}",
                f"{r.conversations_per_s:.2f}",
                str(r.lost),
                "-" if r.bot_cpu_s is None else f"{r.bot_cpu_s:.2f}",
                "-" if ms is None else f"{ms:.2f}",
                f"{r.bench_cpu_s:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def now() -> float:
    return time.perf_counter()


def process_memory(pid: int) -> dict[str, int]:
    """The Vm* lines of /proc/PID/status in KiB (VmRSS, VmHWM: peak RSS...); {} elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            found[key] = int(value.split()[0])
    return found


async def bench_org(repo: Repo, *, now: datetime) -> int:
    """The id of the organisation every conversation benchmark seeds: a school on the health
    form."""
    org = await repo.orgs.create(
        slug="bench",
        name="基准测试学校",
        timezone="Asia/Shanghai",
        language="zh",
        form="health",
        now=now,
    )
    assert org.id is not None
    return org.id
