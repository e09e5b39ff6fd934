"""Throughput of the real check-in bot against a bare aiogram echo bot, over HTTP.

    .venv/bin/python -m bench.checkin --members 200

Both bots run as child processes long-polling the fake Telegram Bot API
(`tests.fakebot.FakeBotAPI`) that this process serves on 127.0.0.1, and N simulated members
talk to them at once, each waiting for the bot's answer before the next step:

1. check-in bot (`python -m bot run`, SQLite file): every member walks the health form
   (/checkin, location, temperature, symptoms, Done, exposure, photo Skip, Confirm: 8 updates)
   until "打卡成功"; afterwards the database must hold one check-in per member and no
   unhandled journal row.
2. echo bot (`python -m bench.echo_bot`): every member sends as many texts as a check-in has
   updates, each after the previous echo.

It prints updates/s and conversations/s of both and their ratio (the goal is >= 0.5), the CPU
time each bot used and the Bot API requests per update. It does not assert speed; it exits 1
when a check-in conversation was lost (no final reply, or not stored), 2 when it could not run
at all. Conversations that straddle midnight in Asia/Shanghai expire by design: avoid 00:00.

Finding out why: `--py-spy FILE` samples the check-in bot while it is measured, `--sql-stats`
counts SQL statements per update by the code that issued them (`bench.sqlstats`),
`--latency MS` makes the fake answer like a distant Telegram (the fake itself is instant)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import shutil
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from bench.common import (
    OUR_PACKAGES,
    BenchError,
    BotProcess,
    ConversationError,
    PhaseResult,
    add_latency,
    bench_org,
    child_env,
    containing,
    expect,
    machine,
    now,
    parsed_options,
    process_cpu_seconds,
    run_main,
    start_bot,
    table,
    temporary_workdir,
    wait_until_polling,
)
from domain.clock import SystemClock
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import CheckIn, CheckInRevision, InboundUpdate, Member
from storage.repo import Repo, RosterRow
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage
from tests.storage.seeding import telegram_accounts_in_bulk

GOAL = 0.5
POLL_WAIT_S = 60.0
FIRST_MEMBER_ID = 800_000_001  # Telegram ids of the measured members
FIRST_WARMUP_ID = 900_000_001  # ... and of the warm-up members (not measured)
CLASS_SIZE = 50

TIANANMEN = (39.9087, 116.3975)
Q_LOCATION = "请发送您当前所在的位置"
Q_TEMPERATURE = "请输入您今天测量的体温"
Q_SYMPTOMS = "您今天是否有以下症状"
Q_EXPOSURE = "近14天内是否接触过"
Q_PHOTO = "如有需要，请上传一张照片"
SUMMARY = "请核对"
DONE_TEXTS = ("打卡成功", "打卡已更新")  # first check-in of the day / an amendment
CHECKIN_UPDATES = 8

Conversation = Callable[[FakeUser, int, float], Awaitable[None]]


@dataclass(frozen=True)
class Options:
    members: int
    rounds: int
    warmup: int
    step_timeout: float
    timeout: float
    only: str
    json: bool
    keep: bool
    py_spy: Path | None
    py_spy_rate: int
    py_spy_args: tuple[str, ...]
    cprofile: Path | None
    sql_stats: bool
    bot_cmd: tuple[str, ...]
    latency_ms: float


# --------------------------------------------------------------------------- conversations
async def checkin_conversation(user: FakeUser, _round: int, wait_s: float) -> None:
    """The health form from /checkin to the confirmation: 8 updates."""
    user.send("/checkin")
    await expect(user, containing(Q_LOCATION), "location question", wait_s)
    user.send_location(*TIANANMEN, accuracy=12.5)
    await expect(user, containing(Q_TEMPERATURE), "temperature question", wait_s)
    user.send("36.5")
    symptoms = await expect(user, containing(Q_SYMPTOMS), "symptoms question", wait_s)
    _press(user, symptoms.message_id, "以上都没有")
    await expect(
        user,
        lambda m: m.is_edit and m.message_id == symptoms.message_id,
        "symptoms keyboard redrawn with the tick",
        wait_s,
    )
    _press(user, symptoms.message_id, "完成")
    exposure = await expect(user, containing(Q_EXPOSURE), "exposure question", wait_s)
    _press(user, exposure.message_id, "否")
    photo = await expect(user, containing(Q_PHOTO), "photo question", wait_s)
    _press(user, photo.message_id, "跳过")
    summary = await expect(user, containing(SUMMARY), "summary", wait_s)
    _press(user, summary.message_id, "确认提交")
    await expect(user, containing(*DONE_TEXTS), "confirmation", wait_s)


def _press(user: FakeUser, message_id: int, text: str) -> None:
    try:
        user.press_button(message_id, text)
    except AssertionError as exc:
        raise ConversationError(f"user {user.id}: {exc}\n{user.transcript()}") from None


async def echo_conversation(user: FakeUser, round_: int, wait_s: float) -> None:
    """As many texts as a check-in has updates, each after the echo of the previous one."""
    for step in range(CHECKIN_UPDATES):
        text = f"echo {user.id} {round_}.{step}"
        user.send(text)
        await expect(user, _text_is(text), f"echo of {text!r}", wait_s)


def _text_is(text: str) -> Callable[[SentMessage], bool]:
    return lambda message: message.text == text


# --------------------------------------------------------------------------- driving
@dataclass
class _Progress:
    completed: int = 0
    last_done: float = 0.0


async def warm_up(
    server: FakeBotAPI, conversation: Conversation, count: int, opts: Options, first_id: int
) -> None:
    """A few conversations before the clock starts (imports, caches, the place index)."""
    if count <= 0:
        return
    users = [server.user(first_id + i) for i in range(count)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(conversation(u, 0, opts.step_timeout) for u in users)),
            opts.timeout,
        )
    except (ConversationError, TimeoutError) as exc:
        raise BenchError(f"the warm-up conversation failed: {exc}") from None


async def drive(
    name: str,
    server: FakeBotAPI,
    bot: BotProcess,
    conversation: Conversation,
    opts: Options,
) -> PhaseResult:
    """All members at once, each running `opts.rounds` conversations one after another."""
    users = [server.user(FIRST_MEMBER_ID + i) for i in range(opts.members)]
    progress = _Progress()
    failures: list[str] = []

    async def member(user: FakeUser) -> None:
        for round_ in range(opts.rounds):
            try:
                await conversation(user, round_, opts.step_timeout)
            except ConversationError as exc:
                failures.append(str(exc))
                return
            progress.completed += 1
            progress.last_done = now()

    first_update = server.last_update_id
    first_call = len(server.calls)
    bot_cpu = process_cpu_seconds(bot.pid)
    bench_cpu = time.process_time()
    started = now()
    tasks = [asyncio.create_task(member(u)) for u in users]
    _, pending = await asyncio.wait(tasks, timeout=opts.timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        failures.append(f"{len(pending)} members still talking after {opts.timeout:.0f} s")
    finished = progress.last_done if progress.last_done and not failures else now()
    bot_cpu_end = process_cpu_seconds(bot.pid)
    calls = server.calls[first_call:]
    return PhaseResult(
        name=name,
        members=opts.members,
        rounds=opts.rounds,
        conversations=opts.members * opts.rounds,
        completed=progress.completed,
        updates=server.last_update_id - first_update,
        seconds=finished - started,
        bot_cpu_s=None if bot_cpu is None or bot_cpu_end is None else bot_cpu_end - bot_cpu,
        bench_cpu_s=time.process_time() - bench_cpu,
        api_calls=len(calls),
        api_errors=sum(1 for c in calls if c.status != 200),
        api_methods=dict(Counter(c.method for c in calls)),
        failures=failures,
    )


# --------------------------------------------------------------------------- check-in bot
async def seed(url: str, members: int, warmup: int) -> None:
    """Schema, one organisation on the health form, and every member already enrolled."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            stamp = SystemClock().now()
            org_id = await bench_org(repo, now=stamp)
            people = [(f"M{i:07d}", FIRST_MEMBER_ID + i) for i in range(members)]
            people += [(f"W{i:07d}", FIRST_WARMUP_ID + i) for i in range(warmup)]
            rows = [
                RosterRow(
                    line=n + 2,
                    unit=f"基准学院/{n // CLASS_SIZE + 1}班",
                    member_id=external,
                    name=f"成员{n}",
                )
                for n, (external, _) in enumerate(people)
            ]
            await repo.members.import_roster(org_id=org_id, rows=rows)
            accounts = await telegram_accounts_in_bulk(
                session, [telegram_id for _, telegram_id in people], now=stamp
            )
            account_of = {external: accounts[telegram_id] for external, telegram_id in people}
            for row in await repo.members.listing(org_id=org_id):
                await repo.members.bind(
                    member=row.member, account_id=account_of[row.member.external_id], now=stamp
                )
            await session.commit()
    finally:
        await engine.dispose()


async def verify(url: str, opts: Options) -> tuple[int, bool, str]:
    """Check-ins really stored for the measured members: (stored, all well, description)."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            measured = col(Member.external_id).startswith("M")
            stored = (
                await session.exec(
                    select(func.count())
                    .select_from(CheckIn)
                    .join(Member, col(Member.id) == CheckIn.member_id)
                    .where(measured, CheckIn.version == opts.rounds)
                )
            ).one()
            revisions = (
                await session.exec(
                    select(func.count())
                    .select_from(CheckInRevision)
                    .join(Member, col(Member.id) == CheckInRevision.member_id)
                    .where(measured)
                )
            ).one()
            unhandled = (
                await session.exec(
                    select(func.count())
                    .select_from(InboundUpdate)
                    .where(col(InboundUpdate.handled_at).is_(None))
                )
            ).one()
    finally:
        await engine.dispose()
    expected = opts.members
    text = (
        f"database: {stored}/{expected} check-ins at version {opts.rounds}, "
        f"{revisions}/{expected * opts.rounds} revisions, {unhandled} unhandled journal rows"
    )
    ok = stored == expected and revisions == expected * opts.rounds and unhandled == 0
    return int(stored), ok, text


async def checkin_phase(opts: Options, workdir: Path) -> PhaseResult:
    url = f"sqlite+aiosqlite:///{workdir / 'daka.db'}"
    started = now()
    await seed(url, opts.members, opts.warmup)
    print(
        f"seeded {opts.members} members (+{opts.warmup} warm-up) in {now() - started:.1f} s",
        file=sys.stderr,
    )
    argv: list[str] = list(opts.bot_cmd) or [sys.executable, "-m", "bot", "run"]
    if opts.cprofile is not None:
        argv = [sys.executable, "-m", "cProfile", "-o", str(opts.cprofile), "-m", "bot", "run"]
    sql_out = workdir / "sqlstats.json"
    if opts.sql_stats:
        argv = [sys.executable, "-m", "bench.sqlstats", str(sql_out)]
    async with FakeBotAPI() as server:
        add_latency(server, opts.latency_ms / 1000)
        env = child_env(
            {
                "BOT_TOKEN": server.token,
                "TELEGRAM_API_URL": server.url,
                "DATABASE_URL": url,
                "LOG_LEVEL": "WARNING",
            }
        )
        bot = await start_bot("checkin-bot", argv, env=env, workdir=workdir)
        spy: asyncio.subprocess.Process | None = None
        try:
            await wait_until_polling(server, bot, POLL_WAIT_S)
            await warm_up(server, checkin_conversation, opts.warmup, opts, FIRST_WARMUP_ID)
            if opts.py_spy is not None:
                spy = await start_py_spy(
                    bot.pid, opts.py_spy, opts.py_spy_rate, opts.py_spy_args, workdir
                )
            result = await drive("check-in", server, bot, checkin_conversation, opts)
        finally:
            if spy is not None:
                await stop_py_spy(spy)
            code = await bot.stop()
        if server.internal_errors:
            result.failures.extend(server.internal_errors)
        handled = server.last_update_id
    if opts.sql_stats:
        result.notes.append(sql_report(sql_out, handled))
    result.problems = dict(bot.log_problems())
    if code != 0:
        result.failures.append(f"the check-in bot exited with code {code}")
    stored, ok, result.verified = await verify(url, opts)
    if not ok:
        result.failures.append(f"not everything was stored: {result.verified}")
    result.completed = min(result.completed, stored * opts.rounds)
    if result.problems:
        result.failures.append(f"the check-in bot logged problems:\n{bot.log_tail()}")
    return result


def sql_report(path: Path, updates: int) -> str:
    """Statements per update by the code that issued them (from `bench.sqlstats`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return f"no SQL statistics ({exc})"
    rows = data.get("statements", [])
    updates = max(updates, 1)
    total = sum(int(r["count"]) for r in rows)
    tx = data.get("transactions", {})
    lines = [
        f"SQL per update ({updates} updates handled, warm-up and start-up included): "
        f"{total / updates:.2f} statements, {tx.get('commit', 0) / updates:.2f} commits"
    ]
    for r in rows:
        per = int(r["count"]) / updates
        if per >= 0.01:
            lines.append(f"  {per:5.2f}  {r['statement']:<26} {r['caller']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- echo bot
async def echo_phase(opts: Options, workdir: Path) -> PhaseResult:
    async with FakeBotAPI() as server:
        add_latency(server, opts.latency_ms / 1000)
        env = child_env(
            {"BOT_TOKEN": server.token, "TELEGRAM_API_URL": server.url, "LOG_LEVEL": "WARNING"}
        )
        argv = [sys.executable, "-m", "bench.echo_bot"]
        bot = await start_bot("echo-bot", argv, env=env, workdir=workdir)
        try:
            await wait_until_polling(server, bot, POLL_WAIT_S)
            await warm_up(server, echo_conversation, opts.warmup, opts, FIRST_WARMUP_ID)
            result = await drive("echo", server, bot, echo_conversation, opts)
        finally:
            code = await bot.stop()
    result.problems = dict(bot.log_problems())
    if code != 0:
        result.failures.append(f"the echo bot exited with code {code}")
    return result


# --------------------------------------------------------------------------- py-spy
def _py_spy_binary() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise BenchError("--py-spy needs py-spy: .venv/bin/pip install py-spy")
    return found


async def start_py_spy(
    pid: int, out: Path, rate: int, extra: Sequence[str], workdir: Path
) -> asyncio.subprocess.Process:
    """Sample the bot for the measured window; the output format follows the file name."""
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    log = (workdir / "py-spy.log").open("wb")
    with log:
        spy = await asyncio.create_subprocess_exec(
            _py_spy_binary(),
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            fmt,
            "--output",
            str(out),
            *extra,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    await asyncio.sleep(0.5)  # let it attach before the clock starts
    if spy.returncode is not None:
        raise BenchError(f"py-spy exited at once; see {workdir / 'py-spy.log'}")
    return spy


async def stop_py_spy(spy: asyncio.subprocess.Process) -> None:
    if spy.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(spy.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                spy.kill()
            await spy.wait()


def print_py_spy(path: Path, what: str) -> None:
    """Where a py-spy recording of `what` is; a raw one summarised (`summarise_collapsed`)."""
    if path.suffix in (".svg", ".json"):
        print(f"py-spy profile of {what} written to {path}")
    elif path.exists():
        print(f"py-spy profile of {what} ({path}):")
        print(summarise_collapsed(path))


def summarise_collapsed(path: Path, top: int = 20) -> str:
    """Top frames of a py-spy raw (collapsed) profile: self samples by package, our code
    inclusive, any function self.

    SQLAlchemy's async layer runs statements in greenlets, which py-spy shows as stacks of
    their own: the inclusive figures of our functions miss the SQL they caused. The package
    breakdown does not depend on stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        own[_frame_name(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for name in {_frame_name(f) for f in frames if _is_ours(f)}:
            inclusive[name] += count
    if not total:
        return "(no samples)"
    lines = [f"{total} samples; self time by package (% of samples):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common(12)]
    lines.append("our code, inclusive (SQL run in greenlets is not included):")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines.append("any function, self:")
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def _frame_file(frame: str) -> str:
    file = frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            if marker == "/lib/python3":
                file = file.split("/", 1)[-1]
    return file


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `path/to/file.py:func`."""
    func_name = frame.partition(" (")[0]
    file = _frame_file(frame)
    return f"{file}:{func_name}" if file else func_name


def _package(frame: str) -> str:
    file = _frame_file(frame)
    head = file.split("/", 1)[0] if "/" in file else file.removesuffix(".py")
    if head in OUR_PACKAGES and not _is_ours(frame):
        return f"{head} (stdlib)"
    return f"{head} (ours)" if _is_ours(frame) else head or "?"


def _is_ours(frame: str) -> bool:
    where = frame.partition(" (")[2]
    return (
        any(where.startswith(f"{pkg}/") or f"/{pkg}/" in where for pkg in OUR_PACKAGES)
        and "site-packages" not in where
    )


# --------------------------------------------------------------------------- main
async def run(opts: Options) -> int:
    results: list[PhaseResult] = []
    with temporary_workdir("daka-bench-", keep=opts.keep) as workdir:
        if opts.only in ("both", "checkin"):
            results.append(await checkin_phase(opts, workdir))
        if opts.only in ("both", "echo"):
            results.append(await echo_phase(opts, workdir))
    report(results, opts)
    checkin = next((r for r in results if r.name == "check-in"), None)
    return 1 if checkin is not None and (checkin.lost or checkin.failures) else 0


def report(results: Sequence[PhaseResult], opts: Options) -> None:
    info = machine()
    print(
        f"machine: {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
        f"{info['platform']}, event loop {info['event loop']}"
    )
    print(
        f"each conversation: {CHECKIN_UPDATES} updates; {opts.members} members at once, "
        f"{opts.rounds} round(s), {opts.warmup} warm-up member(s) not counted"
        + (f", Bot API latency {opts.latency_ms:g} ms" if opts.latency_ms else "")
    )
    print(table(results))
    print(
        "conv/s: completed conversations per second (check-ins/s for the check-in bot); "
        "bot CPU: user+system time of the bot process while measured"
    )
    by_name = {r.name: r for r in results}
    ratio: float | None = None
    if "check-in" in by_name and "echo" in by_name and by_name["echo"].updates_per_s > 0:
        ratio = by_name["check-in"].updates_per_s / by_name["echo"].updates_per_s
        verdict = "meets" if ratio >= GOAL else "below"
        print(f"ratio check-in/echo (updates/s): {ratio:.2f} ({verdict} the goal of {GOAL})")
    for r in results:
        if r.verified:
            print(f"{r.name}: {r.verified}")
        print(f"{r.name}: Bot API requests per update: {r.api_per_update()}")
        for note in r.notes:
            print(f"{r.name}: {note}")
        if r.api_errors:
            print(f"{r.name}: {r.api_errors} of {r.api_calls} Bot API calls answered an error")
        for failure in r.failures[:3]:
            print(f"{r.name} FAILED: {failure}", file=sys.stderr)
        if len(r.failures) > 3:
            print(f"{r.name}: ... and {len(r.failures) - 3} more failures", file=sys.stderr)
    if opts.py_spy is not None:
        print_py_spy(opts.py_spy, "the check-in bot")
    if opts.cprofile is not None:
        print(f"cProfile of the check-in bot written to {opts.cprofile}")
    if opts.json:
        line = {
            "machine": info,
            "goal": GOAL,
            "ratio": None if ratio is None else round(ratio, 3),
            **{r.name: r.as_json() for r in results},
        }
        print(json.dumps(line, ensure_ascii=False))


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.checkin",
        description="Updates/s of the real check-in bot against a bare aiogram echo bot.",
    )
    parser.add_argument("--members", type=int, default=200, help="members at once (200)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="conversations per member, one after another (1)"
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="warm-up conversations before the clock (1)"
    )
    parser.add_argument(
        "--step-timeout", type=float, default=120.0, help="seconds to wait for one reply (120)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds a phase may take at most (900)"
    )
    parser.add_argument("--only", choices=("both", "checkin", "echo"), default="both")
    parser.add_argument(
        "--latency",
        dest="latency_ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="answer every Bot API call but getUpdates this late, like the round trip to "
        "Telegram (0: the fake answers at once)",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, bot logs)")
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record the check-in bot with py-spy while measured: .svg flame graph, "
        ".json speedscope, anything else raw collapsed stacks (summarised at the end)",
    )
    parser.add_argument("--py-spy-rate", type=int, default=100, help="samples/s (100)")
    parser.add_argument(
        "--py-spy-args",
        default="--gil --nonblocking",
        help="more py-spy record options (default: '--gil --nonblocking': only samples holding "
        "the GIL, which is what limits a one-process asyncio bot; without pausing it)",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="FILE",
        help="run the check-in bot under cProfile (whole run, main thread only)",
    )
    parser.add_argument(
        "--sql-stats",
        action="store_true",
        help="run the check-in bot under bench.sqlstats and print SQL statements per update "
        "by the code that issued them",
    )
    parser.add_argument(
        "--bot-cmd",
        default="",
        metavar="CMD",
        help="run the check-in bot with this command instead of `python -m bot run` "
        "(a wrapper that instruments it, say); same environment and working directory",
    )
    args = parser.parse_args(argv)
    if sum(bool(x) for x in (args.cprofile, args.sql_stats, args.bot_cmd)) > 1:
        parser.error("--cprofile, --sql-stats and --bot-cmd each replace the bot command")
    if args.members < 1 or args.rounds < 1 or args.warmup < 0 or args.latency_ms < 0:
        parser.error("--members, --rounds must be at least 1; --warmup, --latency at least 0")
    return parsed_options(
        Options,
        args,
        py_spy=args.py_spy.resolve() if args.py_spy else None,
        py_spy_args=tuple(shlex.split(args.py_spy_args)),
        cprofile=args.cprofile.resolve() if args.cprofile else None,
        bot_cmd=tuple(shlex.split(args.bot_cmd)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
