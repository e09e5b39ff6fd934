"""The check-in and reminder benchmarks on both deployments, side by side: does the scale
configuration (PostgreSQL, Redis, two webhook replicas, one or two schedulers) keep up with the
embedded one (one process, a SQLite file)?

    .venv/bin/python -m bench.scale
    .venv/bin/python -m bench.scale --members 400 --reminder-members 10000 --json

Everything talks to the fake Telegram Bot API (`tests.fakebot.FakeBotAPI`) served by this
process on 127.0.0.1; the bots run as child processes.

1. Check-ins (`--members`, 400): every member walks the health form at once, 8 updates each,
   exactly as `bench.checkin` does (its conversation, warm-up, clock and verification):
   - echo baseline: `bench.echo_bot`, aiogram's own polling, no database (`--no-echo` skips it);
   - embedded: one `daka run` (journaled long polling) on a SQLite file;
   - scale: two `daka webhook` replicas on a fresh PostgreSQL database and a flushed Redis
     database (FSM storage and event isolation), the fake delivering round robin to both.
   Afterwards the database must hold one check-in (version 1, one revision) per member and no
   unhandled journal row.
2. Reminder rounds (`--reminder-members`, 10,000; `--send-rate`, 5,000; the fake enforces no
   limits, like the raw phase of `bench.reminders`):
   - SQLite, `daka remind` (what `bench.reminders` measures);
   - SQLite, one `daka scheduler` (the same round from the scheduler's tick and sender);
   - PostgreSQL, one and two `daka scheduler` processes (`--schedulers 1,2`), each talking to a
     fake server of its own so that the split between them shows.
   sends/s is (sent - 1) / (last - first sendMessage as the fakes received them), as in
   `bench.reminders`; "round s" runs from starting the process(es) to the last send. Every
   member must receive exactly one reminder and the outbox must end with every letter sent.

PostgreSQL: `--pg` (an admin DSN; a temporary database is created and dropped). Redis: `--redis`
(a database number of its own: it is flushed before and after). CPU figures come from /proc:
the bot processes while measured, and the whole PostgreSQL and Redis servers (shared with
anyone else using them: figures of a quiet machine are the ones to trust); PostgreSQL's
sessions and transactions are those of the temporary database only. Exit 1 when a
configuration failed its verification, 2 when one could not run at all. About 2.5 minutes with
the defaults on 2 cores.

Finding out why: `--sql-stats` counts SQL statements per update in the embedded bot and in the
replicas (`bench.sqlstats`); `--max-connections N` sets how many webhook deliveries are in
flight at once (Telegram's default, which Daka keeps, is 40)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import resource
import shlex
import socket
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from sqlmodel import select

from bench import checkin, reminders
from bench.common import (
    BenchError,
    BotProcess,
    PhaseResult,
    child_env,
    machine,
    parsed_options,
    process_cpu_seconds,
    run_main,
    start_bot,
    temporary_workdir,
)
from domain.schedule import ScheduleSpec
from storage.db import create_engine, create_session_factory
from storage.models import Organisation
from storage.schedules import ScheduleRepo
from tests.fakebot import FakeBotAPI
from tests.scheduler.test_processes import Received, outbox_and_runs

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
WEBHOOK_SECRET = "bench-scale_0123456789"
WEBHOOK_PATH = "/telegram"
SHANGHAI = ZoneInfo("Asia/Shanghai")  # the seeded organisations' time zone
READY_WAIT_S = 60.0
SQL_STATS_WRAPPER = (
    "import sys; from pathlib import Path; from bench.sqlstats import install; "
    "install(Path(sys.argv[1])); from bot.cli import main; raise SystemExit(main(sys.argv[2:]))"
)
REDIS_OWNER_KEY = "daka-bench-scale:running"
REDIS_OWNER_TTL_S = 1800
DUPLICATE_GRACE_S = 1.0  # after the last letter settled, how long a duplicate may still come


@dataclass(frozen=True)
class Options:
    members: int
    warmup: int
    echo: bool
    reminder_members: int
    send_rate: float
    schedulers: tuple[int, ...]
    sqlite_scheduler: bool
    only: str
    pg: str
    redis: str
    max_connections: int | None
    sql_stats: bool
    step_timeout: float
    timeout: float
    json: bool
    keep: bool


# --------------------------------------------------------------------------- results
@dataclass
class CheckinRun:
    """One configuration of the check-in benchmark."""

    key: str
    label: str
    processes: int
    result: PhaseResult | None = None
    pg: PgSample | None = None  # while measured
    redis_cpu_s: float | None = None
    deliveries: dict[str, int] = field(default_factory=dict)
    refused_deliveries: int = 0
    broken: str = ""  # why it could not run

    @property
    def failures(self) -> list[str]:
        if self.broken:
            return [self.broken]
        if self.result is None:
            return []
        lost = [f"{self.result.lost} conversations lost"] if self.result.lost else []
        return lost + self.result.failures

    def per_update_ms(self, seconds: float | None) -> float | None:
        if seconds is None or self.result is None or not self.result.updates:
            return None
        return 1000 * seconds / self.result.updates

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "processes": self.processes,
            **(self.result.as_json() if self.result is not None else {}),
            "postgresql": None if self.pg is None else self.pg.as_json(),
            "postgresql_cpu_ms_per_update": _round(
                self.per_update_ms(None if self.pg is None else self.pg.cpu_s), 3
            ),
            "redis_cpu_s": _round(self.redis_cpu_s, 2),
            "redis_cpu_ms_per_update": _round(self.per_update_ms(self.redis_cpu_s), 3),
            "deliveries": self.deliveries,
            "refused_deliveries": self.refused_deliveries,
            "verified": self.result.verified if self.result is not None else "",
            "failures": self.failures,
        }


@dataclass
class RoundRun:
    """One configuration of the reminder round."""

    key: str
    label: str
    database: str  # sqlite or postgresql
    command: str  # remind or scheduler
    processes: int
    members: int
    send_rate: float
    started: float = 0.0  # time.monotonic() when the processes were started
    first_send: float = 0.0
    last_send: float = 0.0
    sent: int = 0
    distinct: int = 0
    duplicates: int = 0
    missing: int = 0
    strangers: int = 0  # chats that are no member's
    per_process: list[int] = field(default_factory=list)
    stalls: int = 0  # pauses between two sends (as in bench.reminders)
    stalled_s: float = 0.0
    process_cpu_s: float = 0.0
    pg: PgSample | None = None  # from start to stop
    outbox: dict[str, int] = field(default_factory=dict)
    slot_claims: int = 0
    failures: list[str] = field(default_factory=list)
    broken: str = ""

    @property
    def sending_s(self) -> float:
        return self.last_send - self.first_send if self.sent else 0.0

    @property
    def round_s(self) -> float:
        return self.last_send - self.started if self.sent else 0.0

    @property
    def per_s(self) -> float:
        return (self.sent - 1) / self.sending_s if self.sent > 1 and self.sending_s > 0 else 0.0

    @property
    def all_failures(self) -> list[str]:
        return [self.broken] if self.broken else self.failures

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "database": self.database,
            "command": self.command,
            "processes": self.processes,
            "members": self.members,
            "send_rate": self.send_rate,
            "sent": self.sent,
            "sends_per_s": round(self.per_s, 1),
            "sending_s": round(self.sending_s, 3),
            "round_s": round(self.round_s, 3),
            "per_process": self.per_process,
            "stalls": self.stalls,
            "stalled_s": round(self.stalled_s, 3),
            "duplicates": self.duplicates,
            "missing": self.missing,
            "strangers": self.strangers,
            "process_cpu_s": round(self.process_cpu_s, 2),
            "postgresql": None if self.pg is None else self.pg.as_json(),
            "outbox": self.outbox,
            "slot_claims": self.slot_claims,
            "failures": self.all_failures,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------- services
@asynccontextmanager
async def temporary_database(admin_dsn: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh PostgreSQL database (its SQLAlchemy URL and name), dropped afterwards."""
    import asyncpg

    name = f"daka_bench_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        raise BenchError(f"PostgreSQL is not reachable at {admin_dsn}: {exc}") from None
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_dsn.rsplit("/", 1)[0].split("://", 1)[1]
    try:
        yield f"postgresql+asyncpg://{base}/{name}", name
    finally:
        try:
            conn = await asyncpg.connect(admin_dsn, timeout=5)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            print(
                f"warning: could not drop database {name} ({exc}); drop it by hand",
                file=sys.stderr,
            )


@dataclass(frozen=True)
class PgSample:
    """What PostgreSQL has done so far: the CPU of the whole server (every database, so anyone
    else's queries too) and the sessions and transactions of our database."""

    cpu_s: float | None
    sessions: int
    commits: int
    rollbacks: int

    def since(self, before: PgSample) -> PgSample:
        cpu = None if self.cpu_s is None or before.cpu_s is None else self.cpu_s - before.cpu_s
        return PgSample(
            cpu,
            self.sessions - before.sessions,
            self.commits - before.commits,
            self.rollbacks - before.rollbacks,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "server_cpu_s": _round(self.cpu_s, 2),
            "sessions": self.sessions,
            "commits": self.commits,
            "rollbacks": self.rollbacks,
        }


async def pg_sample(admin_dsn: str, database: str) -> PgSample:
    """Statistics lag up to a second behind a busy backend; sample after its work ended."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=5)
    try:
        row = await conn.fetchrow(
            "SELECT sessions, xact_commit, xact_rollback, pg_backend_pid() AS pid "
            "FROM pg_stat_database WHERE datname = $1",
            database,
        )
        # Our backend's parent is the postmaster (read while the backend still exists).
        postmaster = _parent_pid(int(row["pid"])) if row is not None else None
    finally:
        await conn.close()
    if row is None:
        raise BenchError(f"PostgreSQL has no statistics for {database}")
    return PgSample(
        server_cpu(postmaster),
        int(row["sessions"]),
        int(row["xact_commit"]),
        int(row["xact_rollback"]),
    )


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on, or None when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def server_cpu(postmaster: int | None) -> float | None:
    """CPU seconds of a PostgreSQL server on this machine: the postmaster, its live children
    (backends, writers) and the children it has reaped (backends of closed connections)."""
    if postmaster is None:
        return None
    fields = _stat_fields(postmaster)
    if fields is None:
        return None
    # utime, stime, cutime, cstime are fields 14 to 17.
    ticks = sum(int(x) for x in fields[11:15])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        child = _stat_fields(int(entry.name))
        if child is not None and child[1] == str(postmaster):
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def flushed_redis(url: str) -> AsyncIterator[Any]:
    """A Redis client on a database of our own, emptied before and after; a key marks it as
    ours meanwhile, so that a second run refuses to flush it under the first."""
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    try:
        if not await client.set(REDIS_OWNER_KEY, owner, nx=True, ex=REDIS_OWNER_TTL_S):
            other = await client.get(REDIS_OWNER_KEY)
            raise BenchError(
                f"{url} is in use by another bench.scale run ({other!r}); pass --redis with "
                f"another database, or delete {REDIS_OWNER_KEY} if that run is gone"
            )
        await client.flushdb()
        await client.set(REDIS_OWNER_KEY, owner, ex=REDIS_OWNER_TTL_S)
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise BenchError(f"Redis is not reachable at {url}: {exc}") from None
    except BaseException:
        await client.aclose()
        raise
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await client.flushdb()
        await client.aclose()


async def redis_cpu_s(client: Any) -> float | None:
    """User + system CPU of the whole Redis server so far."""
    try:
        info = await client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    except Exception:
        return None


async def service_versions(opts: Options) -> str:
    """Which PostgreSQL and Redis were measured (for the record; "unreachable" otherwise)."""
    import asyncpg
    from redis.asyncio import Redis

    try:
        conn = await asyncpg.connect(opts.pg, timeout=5)
        try:
            pg = f"PostgreSQL {await conn.fetchval('SHOW server_version')}"
        finally:
            await conn.close()
    except Exception as exc:
        pg = f"PostgreSQL unreachable ({type(exc).__name__})"
    client = Redis.from_url(opts.redis)
    try:
        redis = f"Redis {(await client.info('server'))['redis_version']}"
    except Exception as exc:
        redis = f"Redis unreachable ({type(exc).__name__})"
    finally:
        await client.aclose()
    return f"{pg} ({opts.pg}), {redis} ({opts.redis})"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- check-ins
CHECKIN_LABELS = {
    "embedded": "embedded: `daka run` (polling), SQLite",
    "echo": "echo baseline: aiogram polling, no database",
    "scale": "scale: 2 × `daka webhook`, PostgreSQL + Redis",
}


def checkin_options(opts: Options, *, sql_stats: bool = False) -> checkin.Options:
    """`bench.checkin`'s own options for the same workload (built by its parser, so that
    whatever it adds keeps its default)."""
    return checkin.parse_args(
        (["--sql-stats"] if sql_stats else [])
        + [
            "--members",
            str(opts.members),
            "--warmup",
            str(opts.warmup),
            "--step-timeout",
            f"{opts.step_timeout:g}",
            "--timeout",
            f"{opts.timeout:g}",
        ]
    )


async def checkin_embedded(opts: Options, workdir: Path) -> CheckinRun:
    run = CheckinRun("embedded", CHECKIN_LABELS["embedded"], 1)
    home = workdir / "checkin-embedded"
    home.mkdir()
    run.result = await checkin.checkin_phase(checkin_options(opts, sql_stats=opts.sql_stats), home)
    return run


async def checkin_echo(opts: Options, workdir: Path) -> CheckinRun:
    run = CheckinRun("echo", CHECKIN_LABELS["echo"], 1)
    home = workdir / "checkin-echo"
    home.mkdir()
    run.result = await checkin.echo_phase(checkin_options(opts), home)
    return run


async def start_replica(
    name: str,
    server: FakeBotAPI,
    database_url: str,
    redis_url: str,
    home: Path,
    *,
    first: bool,
    sql_stats: Path | None = None,
) -> tuple[BotProcess, str, int]:
    """`daka webhook` on a free port; the first one sets the webhook (to itself). With
    `sql_stats`, under `bench.sqlstats`, which writes its counts there when it exits."""
    port = free_port()
    daka = ["webhook", "--host", "127.0.0.1", "--port", str(port)]
    daka += ["--url", f"http://127.0.0.1:{port}"] if first else ["--no-set-webhook"]
    if sql_stats is None:
        argv = [sys.executable, "-m", "bot", *daka]
    else:
        argv = [sys.executable, "-c", SQL_STATS_WRAPPER, str(sql_stats), *daka]
    env = child_env(
        {
            "BOT_TOKEN": server.token,
            "TELEGRAM_API_URL": server.url,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEBHOOK_PATH": WEBHOOK_PATH,
            "LOG_LEVEL": "WARNING",
        }
    )
    bot = await start_bot(name, argv, env=env, workdir=home)
    return bot, f"http://127.0.0.1:{port}{WEBHOOK_PATH}", port


async def until_healthy(bot: BotProcess, port: int, wait_s: float) -> None:
    """Until `/healthz` answers 200; fails early (with the log) if the replica exits."""
    deadline = time.monotonic() + wait_s
    last = "no answer"
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.monotonic() < deadline:
            if bot.process.returncode is not None:
                raise BenchError(
                    f"{bot.name} exited with code {bot.process.returncode}; its log:\n"
                    f"{bot.log_tail()}"
                )
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
                    last = f"{response.status} {await response.text()}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise BenchError(f"{bot.name}: /healthz never answered 200 ({last}); log:\n{bot.log_tail()}")


async def checkin_scale(opts: Options, workdir: Path) -> CheckinRun:
    run = CheckinRun("scale", CHECKIN_LABELS["scale"], 2)
    home = workdir / "checkin-scale"
    home.mkdir()
    copts = checkin_options(opts)
    async with temporary_database(opts.pg) as (url, database), flushed_redis(opts.redis) as redis:
        started = time.perf_counter()
        await checkin.seed(url, copts.members, copts.warmup)
        print(
            f"seeded {copts.members} members (+{copts.warmup} warm-up) in PostgreSQL in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        async with FakeBotAPI() as server:
            replicas: list[tuple[BotProcess, str, int]] = []
            codes: list[int] = []
            try:
                for replica, first in (("a", True), ("b", False)):
                    stats = home / f"sqlstats-{replica}.json" if opts.sql_stats else None
                    replicas.append(
                        await start_replica(
                            replica, server, url, opts.redis, home, first=first, sql_stats=stats
                        )
                    )
                for bot, _, port in replicas:
                    await until_healthy(bot, port, READY_WAIT_S)
                try:
                    await server.wait_for(
                        lambda: bool(server.webhook_url), READY_WAIT_S, "no replica set it"
                    )
                except AssertionError as exc:
                    raise BenchError(f"the webhook was never set: {exc}") from None
                server.webhook_targets = [target for _, target, _ in replicas]
                if opts.max_connections is not None:
                    server.webhook_max_connections = opts.max_connections
                await checkin.warm_up(
                    server,
                    checkin.checkin_conversation,
                    copts.warmup,
                    copts,
                    checkin.FIRST_WARMUP_ID,
                )
                first_delivery = len(server.webhook_deliveries)
                pg_before = await pg_sample(opts.pg, database)
                redis_before = await redis_cpu_s(redis)
                cpu_before = [process_cpu_seconds(bot.pid) for bot, _, _ in replicas]
                result = await checkin.drive(
                    "check-in", server, replicas[0][0], checkin.checkin_conversation, copts
                )
                cpu_after = [process_cpu_seconds(bot.pid) for bot, _, _ in replicas]
                redis_after = await redis_cpu_s(redis)
                pg_cpu = (await pg_sample(opts.pg, database)).since(pg_before).cpu_s
            finally:
                for bot, _, _ in replicas:
                    codes.append(await bot.stop())
            run.result = result
            deliveries = server.webhook_deliveries[first_delivery:]
            if server.internal_errors:
                result.failures.extend(server.internal_errors)
        spent = [
            b - a
            for a, b in zip(cpu_before, cpu_after, strict=True)
            if a is not None and b is not None
        ]
        result.bot_cpu_s = sum(spent) if len(spent) == len(replicas) else None
        pg_counts = (await pg_sample(opts.pg, database)).since(pg_before)  # after the replicas
        run.pg = PgSample(pg_cpu, pg_counts.sessions, pg_counts.commits, pg_counts.rollbacks)
        if redis_before is not None and redis_after is not None:
            run.redis_cpu_s = redis_after - redis_before
        names = {target: bot.name for bot, target, _ in replicas}
        by_target = Counter(names.get(d.target, d.target) for d in deliveries if d.status == 200)
        run.deliveries = {bot.name: by_target.get(bot.name, 0) for bot, _, _ in replicas}
        run.refused_deliveries = sum(1 for d in deliveries if d.status != 200)
        for (bot, _, _), code in zip(replicas, codes, strict=True):
            problems = bot.log_problems()
            for word, count in problems.items():
                result.problems[f"{bot.name}: {word}"] = count
            if code != 0:
                result.failures.append(f"replica {bot.name} exited with code {code}")
            if problems:
                result.failures.append(f"replica {bot.name} logged problems:\n{bot.log_tail()}")
        if not all(run.deliveries.values()):
            result.failures.append(f"a replica got no delivery: {run.deliveries}")
        if opts.sql_stats:
            result.notes.append(merged_sql_report(home, server.last_update_id))
        stored, ok, result.verified = await checkin.verify(url, copts)
        if not ok:
            result.failures.append(f"not everything was stored: {result.verified}")
        result.completed = min(result.completed, stored)
    return run


def merged_sql_report(home: Path, updates: int) -> str:
    """`bench.checkin`'s SQL report over the counts of both replicas together."""
    statements: Counter[tuple[str, str]] = Counter()
    transactions: Counter[str] = Counter()
    for path in sorted(home.glob("sqlstats-*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return f"no SQL statistics from {path.name} ({exc})"
        for row in data.get("statements", []):
            statements[(str(row["statement"]), str(row["caller"]))] += int(row["count"])
        transactions.update({k: int(v) for k, v in data.get("transactions", {}).items()})
    merged = home / "sqlstats.json"
    rows = [
        {"statement": kind, "caller": where, "count": count}
        for (kind, where), count in statements.most_common()
    ]
    merged.write_text(json.dumps({"statements": rows, "transactions": dict(transactions)}))
    return checkin.sql_report(merged, updates)


# --------------------------------------------------------------------------- reminders
@dataclass(frozen=True)
class RoundSpec:
    key: str
    label: str
    database: str
    command: str
    processes: int


def round_specs(opts: Options) -> list[RoundSpec]:
    specs = [RoundSpec("sqlite-remind", "SQLite, `daka remind`", "sqlite", "remind", 1)]
    if opts.sqlite_scheduler:
        specs.append(
            RoundSpec("sqlite-scheduler", "SQLite, 1 × `daka scheduler`", "sqlite", "scheduler", 1)
        )
    for n in opts.schedulers:
        specs.append(
            RoundSpec(
                f"pg-scheduler-{n}",
                f"PostgreSQL, {n} × `daka scheduler`",
                "postgresql",
                "scheduler",
                n,
            )
        )
    return specs


def slot_now() -> str:
    """The current minute in Shanghai: a reminder slot due now (and for 30 minutes)."""
    local = datetime.now(SHANGHAI)
    if f"{local:%H:%M}" >= "23:58":
        raise BenchError("the reminder slot would meet the 23:59 cutoff: run after 00:00 CST")
    return f"{local:%H:%M}"


async def add_schedule(url: str, remind: str) -> None:
    """The seeded organisation reminds at `remind`; its cutoff and report send nothing (nobody
    manages it)."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            org = (await session.exec(select(Organisation))).one()
            assert org.id is not None
            spec = ScheduleSpec.parse(remind=remind, cutoff="23:59", report="23:59", days="all")
            await ScheduleRepo(session).put(org_id=org.id, unit_id=None, spec=spec)
            await session.commit()
    finally:
        await engine.dispose()


async def outbox_state(url: str) -> tuple[dict[str, int], int]:
    """Letters by status, and how many reminder rounds were claimed."""
    statuses, slots = await outbox_and_runs(url)
    claims = sum(n for slot, n in slots.items() if slot.startswith(("remind@", "manual@")))
    return dict(statuses), claims


@asynccontextmanager
async def round_database(
    spec: RoundSpec, opts: Options, home: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """The database URL, and the PostgreSQL database's name (None for SQLite)."""
    if spec.database == "sqlite":
        yield f"sqlite+aiosqlite:///{home / 'daka.db'}", None
        return
    async with temporary_database(opts.pg) as (url, name):
        yield url, name


async def reminder_round(spec: RoundSpec, opts: Options, workdir: Path) -> RoundRun:
    run = RoundRun(
        spec.key,
        spec.label,
        spec.database,
        spec.command,
        spec.processes,
        opts.reminder_members,
        opts.send_rate,
    )
    home = workdir / spec.key
    home.mkdir()
    members = set(range(reminders.FIRST_ID, reminders.FIRST_ID + opts.reminder_members))
    async with round_database(spec, opts, home) as (url, pg_name), AsyncExitStack() as stack:
        started = time.perf_counter()
        await reminders.seed(url, opts.reminder_members)
        if spec.command == "scheduler":
            await add_schedule(url, slot_now())
        print(
            f"{spec.key}: seeded {opts.reminder_members} members in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        servers = [await stack.enter_async_context(FakeBotAPI()) for _ in range(spec.processes)]
        argv = [sys.executable, "-m", "bot", spec.command]
        if spec.command == "remind":
            argv.append("bench")
        pg_before = await pg_sample(opts.pg, pg_name) if pg_name is not None else None
        usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run.started = time.monotonic()
        procs: list[BotProcess] = []
        codes: list[int] = []
        tally = Received(*servers)
        try:
            for n, server in enumerate(servers):
                env = child_env(
                    {
                        "BOT_TOKEN": server.token,
                        "TELEGRAM_API_URL": server.url,
                        "DATABASE_URL": url,
                        "SEND_RATE": f"{opts.send_rate:g}",
                        "LOG_LEVEL": "WARNING",
                    }
                )
                procs.append(
                    await start_bot(f"{spec.command}-{n + 1}", argv, env=env, workdir=home)
                )
            await wait_round(run, spec, url, procs, tally, opts)
        finally:
            for proc in procs:
                codes.append(await proc.stop())
        if pg_name is not None and pg_before is not None:
            run.pg = (await pg_sample(opts.pg, pg_name)).since(pg_before)
        usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run.process_cpu_s = (usage_after.ru_utime - usage_before.ru_utime) + (
            usage_after.ru_stime - usage_before.ru_stime
        )
        tally.scan()
        for proc, code in zip(procs, codes, strict=True):
            if code != 0:
                run.failures.append(f"{proc.name} exited with {code}: {proc.log_tail()}")
            elif proc.log_problems():
                run.failures.append(f"{proc.name} logged problems: {proc.log_tail()}")
        run.outbox, run.slot_claims = await outbox_state(url)
    judge(run, tally, members)
    return run


async def wait_round(
    run: RoundRun,
    spec: RoundSpec,
    url: str,
    procs: Sequence[BotProcess],
    tally: Received,
    opts: Options,
) -> None:
    """Until every member was reminded and the outbox is settled (or `daka remind` exited)."""
    deadline = time.monotonic() + opts.timeout + run.members / run.send_rate
    settled_at: float | None = None
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        reached = tally.scan()
        if spec.command == "remind":
            if procs[0].process.returncode is not None:
                return
            continue
        exited = [p for p in procs if p.process.returncode is not None]
        if exited:
            run.failures.append(f"{exited[0].name} exited early: {exited[0].log_tail()}")
            return
        if reached < run.members:
            continue
        if settled_at is None:
            statuses, _ = await outbox_state(url)
            if statuses.get("pending", 0) + statuses.get("sending", 0) == 0:
                settled_at = time.monotonic()
            else:
                await asyncio.sleep(0.2)
        elif time.monotonic() - settled_at >= DUPLICATE_GRACE_S:
            return
    run.failures.append(
        f"the round did not finish within {opts.timeout + run.members / run.send_rate:.0f} s "
        f"({tally.scan()} of {run.members} members reminded)"
    )


def judge(run: RoundRun, tally: Received, members: set[int]) -> None:
    """Exactly one reminder per member, nothing to anyone else, every letter sent."""
    run.sent = sum(tally.per_chat.values())
    run.distinct = len(tally.per_chat)
    run.per_process = list(tally.per_server)
    times = sorted(tally.times)
    if times:
        run.first_send, run.last_send = times[0], times[-1]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        long = [g for g in gaps if g >= max(reminders.STALL_S, 3 / run.send_rate)]
        run.stalls, run.stalled_s = len(long), sum(long)
    run.duplicates = sum(count - 1 for count in tally.per_chat.values() if count > 1)
    run.missing = len(members - tally.per_chat.keys())
    run.strangers = len(tally.per_chat.keys() - members)
    if run.duplicates or run.missing or run.strangers:
        run.failures.append(
            f"{run.sent} reminders: {run.duplicates} duplicates, {run.missing} members missed, "
            f"{run.strangers} to strangers"
        )
    if run.outbox != {"sent": run.members}:
        run.failures.append(f"outbox ended as {run.outbox}, not {{'sent': {run.members}}}")
    if run.slot_claims != 1:
        run.failures.append(f"the reminder round was claimed {run.slot_claims} times, not once")


# --------------------------------------------------------------------------- report
def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


def checkin_table(runs: Sequence[CheckinRun]) -> str:
    echo = next((r for r in runs if r.key == "echo" and r.result is not None), None)
    lines = [
        "| configuration | updates/s | of echo | check-ins/s | bot CPU per update "
        "| PostgreSQL CPU per update | Redis CPU per update | verified |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        r = run.result
        if r is None:
            lines.append(f"| {run.label} | — | — | — | — | — | — | **could not run** |")
            continue
        ratio = (
            f"{r.updates_per_s / echo.result.updates_per_s:.2f}"
            if echo is not None and echo.result is not None and echo.result.updates_per_s
            else "—"
        )
        checkins = "—" if run.key == "echo" else f"{r.conversations_per_s:.1f}"
        bot_cpu = r.bot_cpu_ms_per_update
        if run.processes > 1 and bot_cpu is not None:
            bot_cpu_text = f"{bot_cpu:.2f} ms ({run.processes} processes)"
        else:
            bot_cpu_text = _ms(bot_cpu)
        verified = "**FAILED**" if run.failures else ("—" if run.key == "echo" else "yes")
        lines.append(
            f"| {run.label} | {r.updates_per_s:,.0f} | {ratio} | {checkins} | {bot_cpu_text} "
            f"| {_ms(run.per_update_ms(run.pg.cpu_s if run.pg else None))} "
            f"| {_ms(run.per_update_ms(run.redis_cpu_s))} "
            f"| {verified} |"
        )
    return "\n".join(lines)


def rounds_table(runs: Sequence[RoundRun]) -> str:
    lines = [
        "| configuration | sends/s | sending s | stalls | round s | sent by | process CPU s "
        "| PostgreSQL CPU s | duplicates | missing | verified |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        if run.broken:
            lines.append(
                f"| {run.label} | — | — | — | — | — | — | — | — | — | **could not run** |"
            )
            continue
        split = " + ".join(f"{n:,}" for n in run.per_process)
        db = "—" if run.pg is None or run.pg.cpu_s is None else f"{run.pg.cpu_s:.1f}"
        lines.append(
            f"| {run.label} | {run.per_s:,.0f} | {run.sending_s:.2f} "
            f"| {run.stalls}: {run.stalled_s:.2f} s | {run.round_s:.2f} "
            f"| {split} | {run.process_cpu_s:.1f} | {db} | {run.duplicates} | {run.missing} "
            f"| {'**FAILED**' if run.all_failures else 'yes'} |"
        )
    return "\n".join(lines)


def report(
    opts: Options,
    argv: Sequence[str],
    services: str,
    loads: Sequence[float],
    checkins: Sequence[CheckinRun],
    rounds: Sequence[RoundRun],
) -> None:
    info = machine()
    command = shlex.join([".venv/bin/python", "-m", "bench.scale", *argv])
    print(f"command: {command}")
    print(
        f"machine: {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
        f"{info['platform']}, event loop {info['event loop']}"
    )
    print(f"services: {services}")
    print(
        "load average (1 min) before and after the run: "
        + ", ".join(f"{load:.2f}" for load in loads)
        + " (before: what others were running)"
    )
    if checkins:
        print()
        print(
            f"Check-ins: {opts.members} members at once, each a complete health check-in "
            f"({checkin.CHECKIN_UPDATES} updates); {opts.warmup} warm-up member(s) not counted"
        )
        print()
        print(checkin_table(checkins))
        for run in checkins:
            r = run.result
            if r is None:
                continue
            print(
                f"- {run.key}: {r.updates} updates in {r.seconds:.2f} s; Bot API requests per "
                f"update {r.api_per_update()}; this process (the fake Bot API and the members) "
                f"used {r.bench_cpu_s:.1f} s CPU"
            )
            if r.verified:
                print(f"  {r.verified}")
            for note in r.notes:
                print(f"  {note}")
            if run.deliveries:
                print(
                    f"  webhook deliveries answered 200: {run.deliveries}; refused or failed: "
                    f"{run.refused_deliveries}"
                )
            if run.pg is not None and r.updates:
                print(
                    f"  PostgreSQL per update: {run.pg.commits / r.updates:.2f} commits, "
                    f"{run.pg.rollbacks / r.updates:.2f} rollbacks, "
                    f"{run.pg.sessions / r.updates:.3f} new connections "
                    f"({run.pg.sessions} in all)"
                )
    if rounds:
        print()
        print(
            f"Reminder rounds: {opts.reminder_members:,} members not checked in, SEND_RATE "
            f"{opts.send_rate:g}, no limits at the fake Bot API"
        )
        print()
        print(rounds_table(rounds))
        print(
            "- sends/s: (sent - 1) / sending s (first to last sendMessage the fakes received); "
            "round s: from starting the process(es) to the last send (start-up, migrations, "
            "choosing the members and filling the outbox included); process CPU: the whole "
            "process(es), start to stop; stalls: pauses between two sends of at least "
            f"{reminders.STALL_S * 1000:.0f} ms, their number and total length"
        )
        for done in rounds:
            if done.broken:
                continue
            pg = (
                f"; PostgreSQL: {done.pg.commits} commits, {done.pg.rollbacks} rollbacks, "
                f"{done.pg.sessions} connections"
                if done.pg is not None
                else ""
            )
            print(
                f"  {done.key}: outbox {done.outbox}, round claimed {done.slot_claims} time(s){pg}"
            )
    problems = [(r.key, f) for r in checkins for f in r.failures]
    problems += [(r.key, f) for r in rounds for f in r.all_failures]
    for key, failure in problems:
        print(f"{key} FAILED: {failure}", file=sys.stderr)
    if opts.json:
        line = {
            "command": command,
            "machine": info,
            "services": services,
            "load_average": [round(load, 2) for load in loads],
            "checkins": {r.key: r.as_json() for r in checkins},
            "reminders": {r.key: r.as_json() for r in rounds},
            "ok": not problems,
        }
        print(json.dumps(line, ensure_ascii=False))


# --------------------------------------------------------------------------- main
def could_not_run(exc: Exception) -> str:
    """One line for the report; the traceback too when it is not one of ours (PostgreSQL
    stopped under the benchmark, say: other people's tests do that on a shared machine)."""
    if not isinstance(exc, BenchError):
        traceback.print_exc()
        return f"could not run: {type(exc).__name__}: {exc}"
    return f"could not run: {exc}"


async def run(opts: Options, argv: Sequence[str]) -> int:
    checkins: list[CheckinRun] = []
    rounds: list[RoundRun] = []
    services = await service_versions(opts)
    loads = [os.getloadavg()[0]]
    with temporary_workdir("daka-bench-scale-", keep=opts.keep) as workdir:
        if opts.only in ("all", "checkin"):
            phases = [checkin_embedded]
            if opts.echo:
                phases.append(checkin_echo)
            phases.append(checkin_scale)
            for phase in phases:
                key = phase.__name__.removeprefix("checkin_")
                try:
                    checkins.append(await phase(opts, workdir))
                except Exception as exc:
                    why = could_not_run(exc)
                    checkins.append(CheckinRun(key, CHECKIN_LABELS[key], 0, broken=why))
        if opts.only in ("all", "reminders"):
            for spec in round_specs(opts):
                try:
                    rounds.append(await reminder_round(spec, opts, workdir))
                except Exception as exc:
                    broken = RoundRun(
                        spec.key, spec.label, spec.database, spec.command, spec.processes, 0, 0
                    )
                    broken.broken = could_not_run(exc)
                    rounds.append(broken)
    loads.append(os.getloadavg()[0])
    report(opts, argv, services, loads, checkins, rounds)
    if any(r.broken for r in checkins) or any(r.broken for r in rounds):
        return 2
    if any(r.failures for r in checkins) or any(r.all_failures for r in rounds):
        return 1
    return 0


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description="Check-ins and reminder rounds, embedded (SQLite) beside scale "
        "(PostgreSQL + Redis, webhook replicas, schedulers).",
    )
    parser.add_argument("--members", type=int, default=400, help="check-in members (400)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up check-ins (1)")
    parser.add_argument("--no-echo", dest="echo", action="store_false", help="skip the echo bot")
    parser.add_argument(
        "--reminder-members", type=int, default=10_000, help="members reminded (10000)"
    )
    parser.add_argument("--send-rate", type=float, default=5000.0, help="SEND_RATE (5000)")
    parser.add_argument(
        "--schedulers",
        default="1,2",
        metavar="N,...",
        help="PostgreSQL rounds with this many `daka scheduler` processes (1,2)",
    )
    parser.add_argument(
        "--no-sqlite-scheduler",
        dest="sqlite_scheduler",
        action="store_false",
        help="skip the SQLite round run by `daka scheduler` (`daka remind` always runs)",
    )
    parser.add_argument("--only", choices=("all", "checkin", "reminders"), default="all")
    parser.add_argument(
        "--pg", default=DEFAULT_PG, help=f"PostgreSQL admin DSN ({DEFAULT_PG})", metavar="DSN"
    )
    parser.add_argument(
        "--redis",
        default=DEFAULT_REDIS,
        metavar="URL",
        help=f"a Redis database of our own, flushed before and after ({DEFAULT_REDIS})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="webhook deliveries in flight at once (default: what the bot set; Telegram's "
        "default is 40)",
    )
    parser.add_argument(
        "--sql-stats",
        action="store_true",
        help="run the webhook replicas under bench.sqlstats and print SQL statements per "
        "update (both replicas, warm-up and start-up included)",
    )
    parser.add_argument(
        "--step-timeout", type=float, default=120.0, help="seconds to wait for one reply (120)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a phase may take at most (300)"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, bot logs)")
    args = parser.parse_args(argv)
    try:
        schedulers = tuple(int(n) for n in args.schedulers.split(",") if n.strip())
    except ValueError:
        parser.error("--schedulers takes numbers, e.g. 1,2")
    if args.members < 1 or args.warmup < 0 or args.reminder_members < 2 or args.send_rate <= 0:
        parser.error("--members >= 1, --warmup >= 0, --reminder-members >= 2, --send-rate > 0")
    if any(n < 1 for n in schedulers):
        parser.error("--schedulers: at least one process per round")
    if args.max_connections is not None and not 1 <= args.max_connections <= 100:
        parser.error("--max-connections: 1 to 100, as on Telegram")
    return parsed_options(Options, args, schedulers=schedulers)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run_main(run(parse_args(args), args))


if __name__ == "__main__":
    raise SystemExit(main())
