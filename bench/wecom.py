"""WeCom check-ins per second through `daka wecom`, against bare callback servers, over HTTP.

    .venv/bin/python -m bench.wecom --members 400

This process serves the local WeCom (`bot.localwecom.LocalWeCom`) and plays WeCom's side of the
callback with the real encryption (`CallbackDriver`: signed, encrypted POSTs, 5 s timeout, 3
tries). N members, enrolled beforehand (their WeCom identities bound to roster rows), talk at
once, each waiting for the app's answer before the next step:

1. `daka wecom` (`python -m bot wecom`, a child process on a free port, SQLite file): every
   member checks in on the health form — the 打卡 menu's location picker (location_select),
   the temperature typed, the symptoms ticked on their vote card and submitted, the exposure
   and photo card buttons pressed (response codes), the summary confirmed on its card: 6
   callbacks
   — until "打卡成功". Afterwards the database must hold one check-in per member at version 1
   and no unhandled journal row.
2. a bare aiohttp server (`python -m bench.wecom_echo`, a child process) that only verifies,
   decrypts and acknowledges: every member posts the same 6 callbacks, each after the previous
   200 (the baseline the goal is set against).
3. a replying echo (`python -m bench.wecom_echo --reply`): the bare server that, after the
   200, answers each callback with one text message to its sender through the product's API
   client (`handlers.wecom.api.WeComAPI`: gettoken cached, message/send) at the same local
   WeCom, as the Telegram bench's echo bot answers each update with one sendMessage: every
   member posts the same 6 callbacks, each after the previous one's answer reached them.

It prints callbacks/s and conversations/s of each, the ratios of daka wecom to the bare server
(the goal is >= 0.5) and to the replying echo, and the callback acknowledgement latency at N
members at once, two ways: on the wire, from the POST's request written to the socket to its 200
read (the goal is p99 <= 200 ms; WeCom gives up after 5 s), and from the POST's call, which adds
the bench's own queue: 400 POSTs begun in one pass of this process's loop leave one after the
other, the last some 100-180 ms after its call, whichever server answers (the bare server's
figures show it). `--latency-trace FILE` writes every measured POST as CSV (phase; when it was
sent and when its request was written to the socket, after the phase began; status; latency from
the call), to see where in the run the slow ones are. Finding out why: `--py-spy FILE` samples
`daka wecom` while it is measured, `--sql-stats` counts its SQL statements by the code that ran
them, `--cprofile FILE` runs it under cProfile (start-up included). It exits 1 when a check-in
was lost, 2 when it could not run at all. Avoid 00:00 in Asia/Shanghai (conversations expire at
midnight by design)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import func
from sqlmodel import col, select

from bench.checkin import print_py_spy, sql_report, start_py_spy, stop_py_spy
from bench.common import (
    BenchError,
    BotProcess,
    ConversationError,
    PhaseResult,
    bench_org,
    child_env,
    machine,
    now,
    parsed_options,
    process_cpu_seconds,
    run_main,
    start_bot,
    table,
    temporary_workdir,
)
from bench.wecom_world import (
    CALLBACKS,
    Conversation,
    StampedRequest,
    TimedDriver,
    WatchedWeCom,
    checkin_conversation,
    echo_conversation,
    p99_ms,
    percentiles,
    replying_echo_conversation,
)
from domain.clock import SystemClock
from handlers.wecom.messages import CHANNEL
from storage.db import create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import CheckIn, InboundEvent, Member
from storage.repo import Repo, RosterRow

GOAL = 0.5
LATENCY_GOAL_MS = 200.0
START_WAIT_S = 60.0
AGENT = 1000002
SECRET = "daka-bench-secret-0123456789"
TOKEN = "dakaBenchToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
PATH = "/wecom"
CLASS_SIZE = 50
DAKA = "daka wecom"
BARE = "bare callback"
REPLYING = "replying echo"


@dataclass(frozen=True)
class Options:
    members: int
    warmup: int
    step_timeout: float
    timeout: float
    only: str
    json: bool
    keep: bool
    latency_trace: Path | None = None
    cprofile: Path | None = None
    py_spy: Path | None = None
    sql_stats: bool = False


def measured(n: int) -> str:
    return f"bench{n:05d}"


def warming(n: int) -> str:
    return f"warm{n:05d}"


# --------------------------------------------------------------------------- driving
@dataclass
class Phase:
    """One server under load: its process, the driver, and what it was sent."""

    name: str
    bot: BotProcess
    driver: TimedDriver
    conversation: Conversation
    wecom: WatchedWeCom | None = None
    latencies: list[float] = field(default_factory=list)  # the POST's call to its 200
    on_wire: list[float] = field(default_factory=list)  # its request written to its 200
    # each POST: sent and written (seconds after the phase began), status, seconds to the answer
    trace: list[tuple[float, float | None, int | None, float]] = field(default_factory=list)


async def drive(phase: Phase, users: Sequence[str], opts: Options) -> PhaseResult:
    """All members at once, one conversation each; the clock stops at the last one's end."""
    failures: list[str] = []
    completed = 0
    last_done = 0.0

    async def member(user: str) -> None:
        nonlocal completed, last_done
        try:
            await phase.conversation(user, opts.step_timeout)
        except ConversationError as exc:
            failures.append(str(exc))
            return
        completed += 1
        last_done = now()

    attempts = phase.driver.attempts
    first_attempt = len(attempts.records)
    refused_before = Counter(attempts.refused)
    first_call = len(phase.wecom.calls) if phase.wecom else 0
    bot_cpu = process_cpu_seconds(phase.bot.pid)
    bench_cpu = time.process_time()
    started = now()
    tasks = [asyncio.create_task(member(u)) for u in users]
    _, pending = await asyncio.wait(tasks, timeout=opts.timeout)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        failures.append(f"{len(pending)} members still talking after {opts.timeout:.0f} s")
    finished = last_done if last_done and not failures else now()
    bot_cpu_end = process_cpu_seconds(phase.bot.pid)
    records = attempts.records[first_attempt:]
    refused = attempts.refused - refused_before
    phase.latencies = [seconds for status, seconds in records if status == 200]
    phase.on_wire = [
        at + seconds - (at if out is None else out)
        for at, out, (status, seconds) in zip(
            attempts.sent[first_attempt:], attempts.written[first_attempt:], records, strict=True
        )
        if status == 200
    ]
    phase.trace = [
        (at - started, None if out is None else out - started, status, seconds)
        for at, out, (status, seconds) in zip(
            attempts.sent[first_attempt:], attempts.written[first_attempt:], records, strict=True
        )
    ]
    calls = phase.wecom.calls[first_call:] if phase.wecom else []
    return PhaseResult(
        name=phase.name,
        members=len(users),
        rounds=1,
        conversations=len(users),
        completed=completed,
        updates=sum(1 for status, _ in records if status == 200),
        seconds=finished - started,
        bot_cpu_s=None if bot_cpu is None or bot_cpu_end is None else bot_cpu_end - bot_cpu,
        bench_cpu_s=time.process_time() - bench_cpu,
        api_calls=len(calls),
        api_errors=sum(1 for c in calls if not c.ok),
        api_methods=dict(Counter(c.path.removeprefix("/cgi-bin/") for c in calls)),
        failures=failures,
        notes=[f"POSTs without a 200 (the driver tried again): {_kinds(refused)}"]
        if refused
        else [],
    )


def _kinds(counts: Counter[str]) -> str:
    parts = ", ".join(f"{kind} {n}" for kind, n in counts.most_common())
    return f"{sum(counts.values())} ({parts})"


async def warm_up(phase: Phase, opts: Options) -> None:
    users = [warming(n) for n in range(opts.warmup)]
    try:
        await asyncio.wait_for(
            asyncio.gather(*(phase.conversation(u, opts.step_timeout) for u in users)),
            opts.timeout,
        )
    except (ConversationError, TimeoutError) as exc:
        raise BenchError(f"the warm-up conversation failed: {exc}") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until_serving(http: aiohttp.ClientSession, port: int, bot: BotProcess) -> None:
    """Until /healthz answers 200; fails early (with its log) if the process exits first."""
    deadline = now() + START_WAIT_S
    while now() < deadline:
        if bot.process.returncode is not None:
            raise BenchError(
                f"{bot.name} exited with code {bot.process.returncode}; its log:\n{bot.log_tail()}"
            )
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise BenchError(f"{bot.name} did not serve within {START_WAIT_S:.0f} s:\n{bot.log_tail()}")


def wecom_env(wecom: WatchedWeCom, extra: dict[str, str]) -> dict[str, str]:
    env = child_env(
        {
            "WECOM_CORP_ID": wecom.corp_id,
            "WECOM_AGENT_ID": str(AGENT),
            "WECOM_SECRET": SECRET,
            "WECOM_TOKEN": TOKEN,
            "WECOM_AES_KEY": AES_KEY,
            "WECOM_API_URL": wecom.url,
            "WECOM_PATH": PATH,
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    env.pop("BOT_TOKEN", None)  # a WeCom-only deployment
    return env


def driver_for(
    port: int, wecom: WatchedWeCom, http: aiohttp.ClientSession, linked: bool
) -> TimedDriver:
    return TimedDriver(
        f"http://127.0.0.1:{port}{PATH}",
        token=TOKEN,
        aes_key=AES_KEY,
        corp_id=wecom.corp_id,
        agent_id=AGENT,
        session=http,
        wecom=wecom if linked else None,
    )


# --------------------------------------------------------------------------- daka wecom
async def seed(url: str, users: Sequence[str]) -> None:
    """Schema, one organisation served by the app on the health form, every member enrolled:
    their WeCom userid bound to their roster row."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            stamp = SystemClock().now()
            org_id = await bench_org(repo, now=stamp)
            await repo.channels.configure(org_id=org_id, channel=CHANNEL, app_id=str(AGENT))
            rows = [
                RosterRow(
                    line=n + 2,
                    unit=f"基准学院/{n // CLASS_SIZE + 1}班",
                    member_id=u.upper(),
                    name=f"成员{n}",
                )
                for n, u in enumerate(users)
            ]
            await repo.members.import_roster(org_id=org_id, rows=rows)
            for row in await repo.members.listing(org_id=org_id):
                account = await repo.accounts.ensure(
                    channel=CHANNEL, external_id=row.member.external_id.lower(), now=stamp
                )
                assert account.id is not None
                await repo.members.bind(member=row.member, account_id=account.id, now=stamp)
            await session.commit()
    finally:
        await engine.dispose()


async def verify(url: str, members: int) -> tuple[bool, str]:
    """Check-ins really stored for the measured members, and the journal all handled."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            stored = (
                await session.exec(
                    select(func.count())
                    .select_from(CheckIn)
                    .join(Member, col(Member.id) == CheckIn.member_id)
                    .where(col(Member.external_id).startswith("BENCH"), CheckIn.version == 1)
                )
            ).one()
            unhandled = (
                await session.exec(
                    select(func.count())
                    .select_from(InboundEvent)
                    .where(col(InboundEvent.handled_at).is_(None))
                )
            ).one()
    finally:
        await engine.dispose()
    text = (
        f"database: {stored}/{members} check-ins at version 1, {unhandled} unhandled journal rows"
    )
    return stored == members and unhandled == 0, text


async def serve_phase(
    name: str,
    process: str,
    argv: Callable[[int], list[str]],
    wecom: WatchedWeCom,
    env: dict[str, str],
    talk: Callable[[TimedDriver], Conversation],
    *,
    linked: bool,
    users: Sequence[str],
    opts: Options,
    workdir: Path,
    http: aiohttp.ClientSession,
) -> tuple[PhaseResult, Phase]:
    """One server's phase (`name`, its row in the table): its process (`argv` for a port)
    started on a free port, warmed up, `users` talking at once (`talk` makes their
    conversation on the driver), then stopped; its exit code, what the local WeCom refused and
    what the server logged go to the result's failures."""
    port = free_port()
    spy: asyncio.subprocess.Process | None = None
    bot = await start_bot(process, argv(port), env=env, workdir=workdir)
    try:
        await wait_until_serving(http, port, bot)
        driver = driver_for(port, wecom, http, linked=linked)
        phase = Phase(name, bot, driver, talk(driver), wecom)
        await warm_up(phase, opts)
        if opts.py_spy is not None and name == DAKA:
            spy = await start_py_spy(bot.pid, opts.py_spy, 250, (), workdir)
        result = await drive(phase, users, opts)
    finally:
        if spy is not None:
            await stop_py_spy(spy)
        code = await bot.stop()
    result.failures.extend(wecom.problems)
    result.problems = dict(bot.log_problems())
    if code != 0:
        result.failures.append(f"{phase.name} exited with code {code}")
    if result.problems:
        result.failures.append(f"{phase.name} logged problems:\n{bot.log_tail()}")
    return result, phase


async def checkin_phase(
    opts: Options, workdir: Path, http: aiohttp.ClientSession
) -> tuple[PhaseResult, Phase]:
    url = f"sqlite+aiosqlite:///{workdir / 'daka.db'}"
    users = [measured(n) for n in range(opts.members)]
    started = now()
    await seed(url, users + [warming(n) for n in range(opts.warmup)])
    print(
        f"seeded {opts.members} members (+{opts.warmup} warm-up) in {now() - started:.1f} s",
        file=sys.stderr,
    )
    async with WatchedWeCom() as wecom:
        wecom.add_app(AGENT, SECRET)
        wecom.add_members(*users, *(warming(n) for n in range(opts.warmup)))
        argv = [sys.executable, "-m", "bot", "wecom", "--host", "127.0.0.1", "--port"]
        if opts.cprofile is not None:
            argv[1:3] = ["-m", "cProfile", "-o", str(opts.cprofile), "-m", "bot"]
        sql_out = workdir / "sqlstats.json"
        if opts.sql_stats:
            argv[1:3] = ["-m", "bench.sqlstats", str(sql_out)]
        result, phase = await serve_phase(
            DAKA,
            "daka-wecom",
            lambda port: [*argv, str(port)],
            wecom,
            wecom_env(wecom, {"DATABASE_URL": url}),
            lambda driver: checkin_conversation(wecom, driver),
            linked=True,
            users=users,
            opts=opts,
            workdir=workdir,
            http=http,
        )
    if opts.sql_stats:
        result.notes.append(sql_report(sql_out, result.updates))
    ok, result.verified = await verify(url, opts.members)
    if not ok:
        result.failures.append(f"not everything was stored: {result.verified}")
    return result, phase


async def echo_phase(
    opts: Options, workdir: Path, http: aiohttp.ClientSession
) -> tuple[PhaseResult, Phase]:
    async with WatchedWeCom() as wecom:
        return await serve_phase(
            BARE,
            "wecom-echo",
            lambda port: [sys.executable, "-m", "bench.wecom_echo", str(port)],
            wecom,
            wecom_env(wecom, {}),
            echo_conversation,
            linked=False,
            users=[measured(n) for n in range(opts.members)],
            opts=opts,
            workdir=workdir,
            http=http,
        )


async def replying_echo_phase(
    opts: Options, workdir: Path, http: aiohttp.ClientSession
) -> tuple[PhaseResult, Phase]:
    users = [measured(n) for n in range(opts.members)]
    async with WatchedWeCom() as wecom:
        wecom.add_app(AGENT, SECRET)
        wecom.add_members(*users, *(warming(n) for n in range(opts.warmup)))
        return await serve_phase(
            REPLYING,
            "wecom-reply",
            lambda port: [sys.executable, "-m", "bench.wecom_echo", str(port), "--reply"],
            wecom,
            wecom_env(wecom, {}),
            lambda driver: replying_echo_conversation(wecom, driver),
            linked=False,  # its cards are made up
            users=users,
            opts=opts,
            workdir=workdir,
            http=http,
        )


# --------------------------------------------------------------------------- report
def report(results: Sequence[tuple[PhaseResult, Phase]], opts: Options) -> None:
    info = machine(wecom=True)
    load = os.getloadavg()
    print(
        f"machine: {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
        f"{info['platform']}, event loop {info['event loop']}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"each conversation: {CALLBACKS} callbacks; {opts.members} members at once, "
        f"{opts.warmup} warm-up member(s) not counted"
    )
    print(table([r for r, _ in results]))
    print(
        "updates: callbacks answered 200; conv/s: completed conversations per second "
        "(check-ins/s for daka wecom); bot CPU: user+system time of the server process"
    )
    by_name = {r.name: r for r, _ in results}

    def ratio_to(base: str) -> float | None:
        if DAKA not in by_name or base not in by_name or by_name[base].updates_per_s <= 0:
            return None
        return by_name[DAKA].updates_per_s / by_name[base].updates_per_s

    ratio, ratio_replying = ratio_to(BARE), ratio_to(REPLYING)
    if ratio is not None:
        verdict = "meets" if ratio >= GOAL else "below"
        print(f"ratio daka wecom/bare (callbacks/s): {ratio:.2f} ({verdict} the goal of {GOAL})")
    if ratio_replying is not None:
        print(f"ratio daka wecom/replying echo (callbacks/s): {ratio_replying:.2f}")
    if BARE in by_name and REPLYING in by_name and by_name[BARE].updates_per_s > 0:
        # what answering through the API costs by itself, on this machine, this run
        ceiling = by_name[REPLYING].updates_per_s / by_name[BARE].updates_per_s
        print(
            f"ratio replying echo/bare (callbacks/s): {ceiling:.2f} (a server that answers "
            "each callback with one message through the API, and does nothing else)"
        )
    for r, phase in results:
        p99 = p99_ms(phase.on_wire)
        verdict = (
            ""
            if p99 is None
            else (" (meets" if p99 <= LATENCY_GOAL_MS else " (above")
            + f" the goal of p99 <= {LATENCY_GOAL_MS:g} ms)"
        )
        wire = percentiles(phase.on_wire)
        print(f"{r.name}: acknowledgement latency on the wire {wire}{verdict}")
        print(
            f"{r.name}: acknowledgement latency from the call (the bench's queue included) "
            f"{percentiles(phase.latencies)}"
        )
        if r.verified:
            print(f"{r.name}: {r.verified}")
        if r.api_calls:
            per = ", ".join(
                f"{k} {v / max(r.updates, 1):.2f}"
                for k, v in sorted(r.api_methods.items(), key=lambda kv: -kv[1])
            )
            total = r.api_calls / max(r.updates, 1)
            print(f"{r.name}: WeCom API requests per callback: {total:.2f} ({per})")
        for note in r.notes:
            print(f"{r.name}: {note}")
        for failure in r.failures[:3]:
            print(f"{r.name} FAILED: {failure}", file=sys.stderr)
        if len(r.failures) > 3:
            print(f"{r.name}: ... and {len(r.failures) - 3} more failures", file=sys.stderr)
    if opts.json:
        line = {
            "machine": info,
            "load": [round(x, 2) for x in load],
            "goal": GOAL,
            "ratio": None if ratio is None else round(ratio, 3),
            "ratio_replying": None if ratio_replying is None else round(ratio_replying, 3),
            **{
                r.name: {
                    **r.as_json(),
                    "ack_p99_ms": p99_ms(phase.on_wire),
                    "ack_p99_from_call_ms": p99_ms(phase.latencies),
                }
                for r, phase in results
            },
        }
        print(json.dumps(line, ensure_ascii=False))


def write_trace(path: Path, phases: Sequence[Phase]) -> None:
    """Each measured POST of each phase, in the order sent: where in the run the slow
    acknowledgements are."""
    lines = ["phase,sent_ms,written_ms,status,latency_ms"]
    for phase in phases:
        for sent, written, status, seconds in sorted(phase.trace, key=lambda t: t[0]):
            out = "" if written is None else f"{1000 * written:.1f}"
            code = "" if status is None else str(status)
            lines.append(f"{phase.name},{1000 * sent:.1f},{out},{code},{1000 * seconds:.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def run(opts: Options) -> int:
    results: list[tuple[PhaseResult, Phase]] = []
    connector = aiohttp.TCPConnector(limit=0)  # 400 members at once: no client-side queue
    # when each request went out (its headers written): the latency on the wire starts there
    async with aiohttp.ClientSession(connector=connector, request_class=StampedRequest) as http:
        with temporary_workdir("daka-bench-wecom-", keep=opts.keep) as workdir:
            if opts.only in ("all", "checkin"):
                results.append(await checkin_phase(opts, workdir, http))
            if opts.only in ("all", "echo"):
                results.append(await echo_phase(opts, workdir, http))
            if opts.only in ("all", "replying"):
                results.append(await replying_echo_phase(opts, workdir, http))
    report(results, opts)
    if opts.latency_trace is not None:
        write_trace(opts.latency_trace, [phase for _, phase in results])
    if opts.py_spy is not None:
        print_py_spy(opts.py_spy, "daka wecom")
    checkin = next((r for r, _ in results if r.name == DAKA), None)
    return 1 if checkin is not None and (checkin.lost or checkin.failures) else 0


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wecom",
        description="WeCom check-ins/s through daka wecom against bare callback servers.",
    )
    parser.add_argument("--members", type=int, default=400, help="members at once (400)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up conversations (1)")
    parser.add_argument(
        "--step-timeout", type=float, default=120.0, help="seconds to wait for one reply (120)"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds a phase may take at most (900)"
    )
    parser.add_argument(
        "--only",
        choices=("all", "both", "checkin", "echo", "replying"),
        default="all",
        help='one phase: daka wecom, the bare server or the replying echo (all; "both": all)',
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DB, logs)")
    parser.add_argument(
        "--latency-trace",
        type=Path,
        metavar="FILE",
        help="write each measured POST as CSV: phase, sent and written to the socket (ms "
        "after the phase began), status, ms from sent to the answer",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="FILE",
        help="record daka wecom with py-spy while measured: .svg flame graph, .json "
        "speedscope, anything else raw collapsed stacks (summarised at the end)",
    )
    parser.add_argument(
        "--sql-stats",
        action="store_true",
        help="count daka wecom's SQL statements and commits by the code that ran them",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="FILE",
        help="run daka wecom under cProfile (whole run, main thread only)",
    )
    args = parser.parse_args(argv)
    if args.cprofile and args.sql_stats:
        parser.error("--cprofile and --sql-stats each replace the server's command")
    if args.only == "both":  # what it was called with two phases
        args.only = "all"
    if args.members < 1 or args.warmup < 0:
        parser.error("--members must be at least 1, --warmup at least 0")
    return parsed_options(
        Options,
        args,
        cprofile=args.cprofile.resolve() if args.cprofile else None,
        py_spy=args.py_spy.resolve() if args.py_spy else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(run(parse_args(argv)), wecom=True)


if __name__ == "__main__":
    raise SystemExit(main())
