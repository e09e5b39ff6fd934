"""Managers' figures on a big organisation, each beside a hand-written SQL query over the same
SQLite file in the same run; and the memory of the bot process with that file.

    .venv/bin/python -m bench.managers
    .venv/bin/python -m bench.managers --members 20000 --classes 400 --days 7 --no-bot

The data: one organisation of --members (100,000) members in --classes (2,000) classes under
--colleges (20) colleges, and --days (30) days of check-ins up to 2026-11-28 (2.7 million
check-ins, 3 million rows in all): 3 % never enrolled, 1 % of the enrolled unreachable and 1 %
enrolled during those days, 0.5 % inactive, 1.5 % excused for 1-7 days, 95 % of the expected
reporting each day, 2 % of the check-ins abnormal; each day's check-ins stored in the order
they arrive. The schema comes from
the migrations, the rows from the raw sqlite3 module in one transaction (synchronous=OFF for
the generation only). The file is kept in bench/out/, named by those four numbers, and reused
by later runs (`--regenerate` builds it again); each run first applies pending migrations to it,
as the bot does at start. No ANALYZE is run: the bot never runs it either.

The measured day is the data's last day ("today"). Ours is the real code path
(`storage.aggregates`, `storage.export`, `domain.present.sheets`) on an AsyncSession of
`storage.db`; the hand-written baseline is plain SQL text (`exec_driver_sql`, the best of the
shapes tried) on a connection of the same engine, so both pay the same driver. Each run gets a
fresh session or connection, opened before its clock starts, as a handler's queries run on the
session of its update. Both must give the same result (compared after the warm-up, or the row
fails). Figures:

- class summary: /summary of one class, `unit_figures([class])`. Goal <= 20 ms.
- college /summary: the college's figures and each of its classes' (two `unit_figures` calls, as
  `domain.conversation.summary.summary_view` makes them); hand-written: the same two queries.
- organisation roll-up: an administrator's /summary, `unit_figures(colleges)` and `total`.
  Goal <= 200 ms.
- today's missing list: `member_days(under=colleges, statuses={missing})`, the list the cutoff
  round sends and /missing pages through.
- /missing first page: `member_days(limit=11)` and `count_member_days`, what /missing runs.
- one-day export: what /export's maker runs, `write_export` into a temporary file (rows read,
  formatted and written a few thousand at a time); the hand-written side formats the same rows
  and writes them all with the same writer (`write_xlsx`); their sheets must be the same.
  Goal <= 5 s.

Every query must also stay within 1.3 x its hand-written baseline. Then `python -m bot run`
is started on the file against the fake Telegram Bot API (`tests.fakebot.FakeBotAPI`) and an
administrator sends /summary and /missing for the day: the bot's RSS (VmRSS) once it polls and
after each reply, goal <= 150 MiB. `--bot-export` then has ten members ask /today over and
over while the administrator asks for /export of the whole organisation (`--export-rounds`
times): their reply latency meanwhile (goal: p99 <= 300 ms) and the RSS of the bot and of the
process that makes the export (goal <= 250 MiB), see `export_under_load`.
Before that the update journal is emptied and the scheduler's slots of today are claimed, so the
bot's scheduler does nothing in the measured file.

Exit code 0 when every goal is met and every result agrees, 1 otherwise, 2 when it cannot run.
Timings are wall-clock: on a busy machine (the load average is printed) they are noisy, the
ratios less so since ours and hand-written alternate."""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import math
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

import bot  # noqa: F401  (the shims, as in the bot and its export maker: measured here too)
from bench.common import (
    REPO_ROOT,
    BenchError,
    child_env,
    machine,
    now,
    process_memory,
    start_bot,
    wait_until_polling,
)
from domain.clock import day_end
from domain.conversation.lists import PAGE
from domain.forms import load_form
from domain.present.sheets import Cell, write_xlsx
from domain.schedule import DEFAULT
from domain.status import DayStatus, Figures
from storage.aggregates import MemberDay, count_member_days, member_days, total, unit_figures
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.export import (
    AnswerValues,
    detail_layout,
    place,
    summary_row,
    words_for,
    write_export,
)
from storage.migrate import upgrade
from storage.models import Organisation, Unit
from storage.repo import Repo
from storage.schedules import plan
from tests.fakebot import FakeBotAPI, FakeUser

OUT_DIR = REPO_ROOT / "bench" / "out"
GENERATOR_VERSION = 2  # bump when the generated data changes shape: old files are not reused
TODAY = date(2026, 11, 28)  # the data's "today", the last generated day (a Saturday)
TIMEZONE = "Asia/Shanghai"
SLUG = "bench"
ADMIN_ID = 500_000_001  # Telegram id of the organisation's administrator (the bot phase)
FIRST_TELEGRAM_ID = 100_000_001

CLASS_GOAL_MS = 20.0
ORG_GOAL_MS = 200.0
EXPORT_GOAL_MS = 5_000.0
RATIO_GOAL = 1.3  # ours / hand-written, medians
MEMORY_GOAL_MIB = 150
FAST_REPEAT = 25
POLL_WAIT_S = 60.0
REPLY_WAIT_S = 120.0
EXPECTED_REPLY = {"/summary": "基准大学", "/missing": f"{TODAY}"}
EXPORT_ROWS_LABEL = "the whole organisation"

NOT_ENROLLED = 0.03  # of the roster: never bound a Telegram account
INACTIVE = 0.005  # of the roster: left (active = false)
LATE_ENROLLED = 0.01  # of the enrolled: enrolled during the generated days
UNREACHABLE = 0.01  # of the enrolled: blocked the bot
REPORT_RATE = 0.95  # of the expected, each day
ABNORMAL = 0.02  # of the check-ins
EXCUSED = 0.015  # of the enrolled: one excuse of 1-7 days within the generated days

PLACES = (  # province, city, latitude, longitude, weight
    ("湖北省", "武汉市", 30.5928, 114.3055, 70),
    ("北京市", "北京市", 39.9042, 116.4074, 6),
    ("上海市", "上海市", 31.2304, 121.4737, 6),
    ("广东省", "深圳市", 22.5431, 114.0579, 6),
    ("四川省", "成都市", 30.5728, 104.0668, 6),
    ("浙江省", "杭州市", 30.2741, 120.1551, 6),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞宇浩然子轩欣怡梓涵雨泽思远晨阳嘉文博"  # noqa: E501


@dataclass(frozen=True)
class Shape:
    """What to generate."""

    members: int
    classes: int
    colleges: int
    days: int

    @property
    def first_day(self) -> date:
        return TODAY - timedelta(days=self.days - 1)

    def file(self) -> Path:
        return OUT_DIR / (
            f"managers-m{self.members}-c{self.classes}-g{self.colleges}-d{self.days}"
            f"-v{GENERATOR_VERSION}.db"
        )


# --------------------------------------------------------------------------- generation
def _stamp(moment: datetime) -> str:
    """A UTC instant as SQLAlchemy stores `UTCDateTime` in SQLite."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _local(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    """A local wall time of the organisation (UTC+8 all year), as an aware UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC) - timedelta(
        hours=8
    )


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))


async def _schema(path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def generate(shape: Shape, path: Path, *, log: bool = True) -> None:
    """The schema by the migrations, then every row by the raw sqlite3 module in one
    transaction (synchronous=OFF for the generation only)."""
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    asyncio.run(_schema(tmp))
    rng = random.Random(20261128)
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-1000000")
        db.execute("BEGIN")
        counts = _fill(db, shape, rng)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    tmp.replace(path)
    for leftover in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    if log:
        size = path.stat().st_size / 2**20
        print(
            f"generated {path.name} in {time.perf_counter() - started:.1f} s ({size:,.0f} MiB): "
            + ", ".join(f"{n:,} {what}" for what, n in counts.items()),
            file=sys.stderr,
        )


def _fill(db: sqlite3.Connection, shape: Shape, rng: random.Random) -> dict[str, int]:
    first, days = shape.first_day, shape.days
    created = _stamp(_local(first - timedelta(days=90), 9, 0))
    db.execute(
        "INSERT INTO organisation (id, slug, name, timezone, language, form, retain_days, "
        "created_at) VALUES (1, ?, ?, ?, 'zh', 'health', 30, ?)",
        (SLUG, "基准大学", TIMEZONE, created),
    )
    # Units: colleges (roots) 1..G, then classes, each under college c * G // C.
    units: list[tuple[int, int, int | None, str, str, str, int]] = []
    links: list[tuple[int, int, int]] = []
    for c in range(shape.colleges):
        uid = c + 1
        name = f"第{c + 1:02d}学院"
        units.append((uid, 1, None, name, name, f"/{uid}/", 0))
        links.append((uid, uid, 0))
    class_unit = []
    for k in range(shape.classes):
        uid = shape.colleges + k + 1
        parent = k * shape.colleges // shape.classes + 1
        pname = units[parent - 1][3]
        name = f"{k + 1:04d}班"
        units.append((uid, 1, parent, name, f"{pname}/{name}", f"/{parent}/{uid}/", 1))
        links += [(uid, uid, 0), (parent, uid, 1)]
        class_unit.append(uid)
    db.executemany(
        "INSERT INTO unit (id, org_id, parent_id, name, name_path, path, depth) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        units,
    )
    db.executemany(
        "INSERT INTO unitlink (ancestor_id, descendant_id, depth) VALUES (?, ?, ?)", links
    )

    # Members, in roster order: class by class.
    members = []  # (id, unit, account_id, enrolled_day, unreachable, active)
    accounts: list[tuple[int, str | None, int, None, str]] = []
    identities: list[tuple[str, int, str]] = []
    before = first - timedelta(days=30)
    for i in range(shape.members):
        mid = i + 1
        unit = class_unit[i * shape.classes // shape.members]
        active = rng.random() >= INACTIVE
        telegram = None if rng.random() < NOT_ENROLLED else FIRST_TELEGRAM_ID + i
        account = None
        enrolled_day = None
        unreachable = None
        if telegram is not None:
            account = len(accounts) + 1
            late = rng.random() < LATE_ENROLLED
            enrolled_day = first + timedelta(days=rng.randrange(days)) if late else before
            if rng.random() < UNREACHABLE:
                unreachable = _stamp(_local(first + timedelta(days=rng.randrange(days)), 8, 0))
            seen = _stamp(_local(enrolled_day, 8, 30))
            accounts.append((account, "en" if rng.random() < 0.02 else None, 0, None, seen))
            identities.append((str(telegram), account, seen))
        members.append((mid, unit, account, enrolled_day, unreachable, active))
    db.executemany(
        "INSERT INTO member (id, org_id, unit_id, external_id, name, account_id, enrolled_at, "
        "active, unreachable_since) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                mid,
                unit,
                f"{2024000000 + mid}",
                _name(rng),
                account,
                None if enrolled is None else _stamp(_local(enrolled, 8, 30)),
                int(active),
                unreachable,
            )
            for mid, unit, account, enrolled, unreachable, active in members
        ),
    )
    db.executemany(
        "INSERT INTO account (id, language, failed_attempts, locked_until, first_seen) "
        "VALUES (?, ?, ?, ?, ?)",
        accounts,
    )
    db.executemany(
        "INSERT INTO identity (channel, external_id, account_id, created_at) "
        "VALUES ('telegram', ?, ?, ?)",
        identities,
    )
    # Excuses: a few enrolled members, 1-7 days each.
    excused: dict[int, tuple[date, date]] = {}
    enrolled_ids = [m[0] for m in members if m[2] is not None]
    for mid in rng.sample(enrolled_ids, int(len(enrolled_ids) * EXCUSED)):
        start = first + timedelta(days=rng.randrange(days))
        excused[mid] = (start, start + timedelta(days=rng.randrange(7)))
    db.executemany(
        "INSERT INTO excuse (org_id, member_id, first_day, last_day, reason, created_by, "
        "created_at) VALUES (1, ?, ?, ?, ?, 'bench', ?)",
        (
            (mid, a.isoformat(), b.isoformat(), rng.choice(("病假", "事假", "实习")), created)
            for mid, (a, b) in sorted(excused.items())
        ),
    )
    # An administrator of the whole organisation (the bot phase asks /summary as them).
    admin = len(accounts) + 1
    db.execute(
        "INSERT INTO account (id, language, failed_attempts, first_seen) VALUES (?, 'zh', 0, ?)",
        (admin, created),
    )
    db.execute(
        "INSERT INTO identity (channel, external_id, account_id, created_at) "
        "VALUES ('telegram', ?, ?, ?)",
        (str(ADMIN_ID), admin, created),
    )
    db.execute(
        "INSERT INTO rolegrant (org_id, account_id, unit_id, role, granted_at) "
        "VALUES (1, ?, NULL, 'admin', ?)",
        (admin, created),
    )
    # Check-ins, day by day and in the order they arrive (rowids follow submission time, as in
    # production: a day's rows are together, its members in no particular order).
    homes = {}
    weights = [p[4] for p in PLACES]
    for mid, *_ in members:
        p = rng.choices(PLACES, weights)[0]
        homes[mid] = (p[0], p[1], p[2] + rng.uniform(-0.05, 0.05), p[3] + rng.uniform(-0.05, 0.05))
    checkins = 0
    for d in range(days):
        day = first + timedelta(days=d)
        rows = sorted(_checkins(day, members, excused, homes, rng), key=lambda r: str(r[3]))
        db.executemany(
            "INSERT INTO checkin (org_id, unit_id, member_id, local_day, version, submitted_at, "
            "latitude, longitude, accuracy_m, live, country, province, city, outside_geofence, "
            "abnormal, reasons, answers, form, form_version) "
            "VALUES (1, ?, ?, ?, 1, ?, ?, ?, ?, 0, '中国', ?, ?, 0, ?, ?, ?, 'health', 1)",
            rows,
        )
        checkins += len(rows)
    return {
        "units": len(units),
        "unit links": len(links),
        "members": len(members),
        "accounts": len(accounts) + 1,
        "excuses": len(excused),
        "check-ins": checkins,
    }


def _checkins(
    day: date,
    members: Sequence[tuple[int, int, int | None, date | None, str | None, bool]],
    excused: dict[int, tuple[date, date]],
    homes: dict[int, tuple[str, str, float, float]],
    rng: random.Random,
) -> Iterator[tuple[object, ...]]:
    iso = day.isoformat()
    random_ = rng.random
    for mid, unit, telegram, enrolled_day, _unreachable, active in members:
        if telegram is None or not active or enrolled_day is None or enrolled_day > day:
            continue
        span = excused.get(mid)
        if span is not None and span[0] <= day <= span[1] and random_() < 0.9:
            continue
        if random_() >= REPORT_RATE:
            continue
        province, city, lat, lon = homes[mid]
        lat += rng.uniform(-0.002, 0.002)
        lon += rng.uniform(-0.002, 0.002)
        seconds = rng.randrange(6 * 3600, 13 * 3600)
        submitted = _local(day, 0, 0) + timedelta(seconds=seconds)
        temperature, symptoms, exposure = 36.5, '["none"]', "false"
        reasons = "[]"
        abnormal = random_() < ABNORMAL
        if abnormal:
            which = rng.randrange(3)
            if which == 0:
                temperature, reasons = 37.6, '["temperature"]'
            elif which == 1:
                symptoms, reasons = '["cough", "fatigue"]', '["symptoms"]'
            else:
                exposure, reasons = "true", '["exposure"]'
        else:
            temperature = rng.choice((36.2, 36.3, 36.4, 36.5, 36.6, 36.7, 36.8))
        detail = '"12月1日 途经武汉"' if exposure == "true" else "null"
        answers = (
            f'{{"location": {{"lat": {lat!r}, "lon": {lon!r}, "accuracy": 12.5, "live": false}}, '
            f'"temperature": {temperature}, "symptoms": {symptoms}, '
            f'"exposure": {{"yes": {exposure}, "detail": {detail}}}, "photo": null}}'
        )
        yield (
            unit,
            mid,
            iso,
            _stamp(submitted),
            lat,
            lon,
            12.5,
            province,
            city,
            int(abnormal),
            reasons,
            answers,
        )


# --------------------------------------------------------------------------- the measured world
@dataclass
class World:
    """What the queries are about, loaded before any clock starts."""

    org: Organisation
    day: date
    roots: list[Unit]
    college: Unit
    classes: list[Unit]
    one_class: Unit
    off_units: set[int]
    enrolled_by: datetime

    @property
    def org_id(self) -> int:
        assert self.org.id is not None
        return self.org.id

    def params(self) -> dict[str, object]:
        """Bind parameters of the hand-written queries, stored as SQLAlchemy stores them."""
        return {
            "org": self.org_id,
            "day": self.day.isoformat(),
            "enrolled_by": _stamp(self.enrolled_by),
        }


async def load_world(sessions: SessionFactory, day: date) -> World:
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.require(slug=SLUG)
        assert org.id is not None
        roots = list(await repo.units.roots(org_id=org.id))
        college = roots[len(roots) // 2]
        assert college.id is not None
        classes = list(await repo.units.children(unit_id=college.id))
        if not classes:
            raise BenchError(f"{college.name_path} has no classes")
        org_plan = await plan(session, org)
        return World(
            org=org,
            day=day,
            roots=roots,
            college=college,
            classes=classes,
            one_class=classes[len(classes) // 2],
            off_units=org_plan.off_units(day),
            enrolled_by=day_end(day, org.timezone),
        )


# --------------------------------------------------------------------------- hand-written SQL
def _ids(ids: Iterable[int | None]) -> str:
    return ", ".join(str(int(i)) for i in ids if i is not None)


def _status_sql(world: World, *, voluntary: bool = False) -> str:
    """`domain.status.day_status` for member m and its check-in c of :day; with `voluntary`,
    the figures' rule: a check-in on a day off of the member's unit is 'voluntary'."""
    off_units = f"m.unit_id IN ({_ids(sorted(world.off_units))})" if world.off_units else ""
    rest = """WHEN m.withdrawn_day IS NOT NULL AND m.withdrawn_day <= :day THEN 'withdrawn'
        WHEN m.account_id IS NULL OR m.enrolled_at > :enrolled_by THEN 'not_enrolled'
        WHEN EXISTS (SELECT 1 FROM excuse e WHERE e.member_id = m.id
                     AND e.first_day <= :day AND e.last_day >= :day) THEN 'excused'"""
    if voluntary and off_units:
        return f"""CASE WHEN {off_units}
        THEN CASE WHEN c.id IS NOT NULL THEN 'voluntary' {rest} ELSE 'off' END
        ELSE CASE WHEN c.id IS NOT NULL THEN 'reported' {rest} ELSE 'missing' END END"""
    off = f"WHEN {off_units} THEN 'off'" if off_units else ""
    return f"""CASE WHEN c.id IS NOT NULL THEN 'reported'
        {rest}
        {off}
        ELSE 'missing' END"""


# The figures of each unit in {ids}, its subtree included. The same shape as ours: the fastest
# of the shapes tried (grouping by member unit first and rolling up, or plain sums of boolean
# expressions, both cost 10-60 % more in SQLite).
FIGURES_SQL = """
SELECT unit_id, count(*), sum(st = 'not_enrolled'), sum(st = 'excused'), sum(st = 'off'),
       sum(st = 'reported'), sum(st = 'missing'), sum(st = 'missing' AND unr IS NOT NULL),
       coalesce(sum(abn), 0), {voluntary}, sum(st = 'withdrawn')
FROM (SELECT l.ancestor_id AS unit_id, m.unreachable_since AS unr, c.abnormal AS abn,
             {status} AS st
      FROM unitlink l
      JOIN member m ON m.unit_id = l.descendant_id AND m.active
      LEFT JOIN checkin c ON c.org_id = m.org_id AND c.member_id = m.id AND c.local_day = :day
      WHERE l.ancestor_id IN ({ids}))
GROUP BY unit_id
"""

# Who is missing: active, enrolled by the day's end, not off, no check-in, no excuse. The
# check-in through an outer join (a NOT EXISTS subquery is planned on the (member, day) key).
MISSING_CHECKIN = (
    "LEFT JOIN checkin c ON c.org_id = m.org_id AND c.member_id = m.id AND c.local_day = :day"
)
MISSING_WHERE = """
    m.org_id = :org AND m.active AND c.id IS NULL AND m.account_id IS NOT NULL
    AND (m.enrolled_at IS NULL OR m.enrolled_at <= :enrolled_by) {off}
    AND (m.withdrawn_day IS NULL OR m.withdrawn_day > :day)
    AND NOT EXISTS (SELECT 1 FROM excuse e
                    WHERE e.member_id = m.id AND e.first_day <= :day AND e.last_day >= :day)
"""
MISSING_SQL = f"""
SELECT m.id, m.external_id, m.name, m.unit_id, u.name_path, m.account_id, a.language,
       m.unreachable_since IS NOT NULL
FROM member m
{MISSING_CHECKIN}
JOIN unit u ON u.id = m.unit_id
LEFT JOIN account a ON a.id = m.account_id
WHERE {{where}}
ORDER BY u.name_path, m.external_id
"""
MISSING_COUNT_SQL = f"SELECT count(*) FROM member m {MISSING_CHECKIN} WHERE {{where}}"

# The export's detail: every active member on :day, in the export's order.
DETAIL_SQL = """
SELECT u.name_path, m.external_id, m.name, {status} AS st, c.submitted_at, c.latitude,
       c.longitude, c.province, c.city, c.abnormal, c.reasons, c.answers
FROM member m
JOIN unit u ON u.id = m.unit_id
LEFT JOIN checkin c ON c.org_id = m.org_id AND c.member_id = m.id AND c.local_day = :day
WHERE m.org_id = :org AND m.active
ORDER BY u.name_path, m.external_id
"""
UNITS_SQL = "SELECT id, name_path, parent_id FROM unit WHERE org_id = :org"

Counts = tuple[int, ...]


async def hand_figures(
    conn: AsyncConnection, world: World, ids: Sequence[int | None]
) -> dict[int, Counts]:
    sql = FIGURES_SQL.format(
        status=_status_sql(world, voluntary=True),
        ids=_ids(ids),
        voluntary="sum(st = 'voluntary')" if world.off_units else "0",
    )
    result = await conn.exec_driver_sql(sql, world.params())
    rows = cast(list[tuple[int, ...]], result.all())
    return {int(row[0]): tuple(int(v) for v in row[1:]) for row in rows}


def _counts(f: Figures) -> Counts:
    return (
        f.roster,
        f.not_enrolled,
        f.excused,
        f.off,
        f.reported,
        f.missing,
        f.unreachable,
        f.abnormal,
        f.voluntary,
        f.withdrawn,
    )


def _figures(unit: Unit, counts: Counts | None) -> Figures:
    if counts is None:
        return Figures(unit_id=unit.id, name=unit.name)
    (
        roster,
        not_enrolled,
        excused,
        off,
        reported,
        missing,
        unreachable,
        abnormal,
        voluntary,
        withdrawn,
    ) = counts
    return Figures(
        unit_id=unit.id,
        name=unit.name,
        roster=roster,
        not_enrolled=not_enrolled,
        excused=excused,
        off=off,
        reported=reported,
        missing=missing,
        unreachable=unreachable,
        abnormal=abnormal,
        voluntary=voluntary,
        withdrawn=withdrawn,
    )


# --------------------------------------------------------------------------- the queries
@dataclass
class Query:
    """One measured figure: ours through the real code, and the hand-written SQL."""

    name: str
    goal_ms: float | None
    ours: Callable[[AsyncSession], Awaitable[object]]  # given an open session, as handlers are
    hand: Callable[[AsyncConnection], Awaitable[object]]  # given an open connection
    same: Callable[[object, object], str | None]  # None when both gave the same result
    repeat: int


def queries(w: World, opts: Options) -> list[Query]:
    day, off, enrolled_by = w.day, w.off_units, w.enrolled_by
    under = [u.id or 0 for u in w.roots]

    # -- a class: /summary of a class (it has no children: one unit_figures call)
    async def class_ours(session: AsyncSession) -> object:
        return await unit_figures(
            session, units=[w.one_class], day=day, off_units=off, enrolled_by=enrolled_by
        )

    async def class_hand(conn: AsyncConnection) -> object:
        return await hand_figures(conn, w, [w.one_class.id])

    def class_same(ours: object, hand: object) -> str | None:
        [mine] = cast(list[Figures], ours)
        return _differ(_counts(mine), cast(dict[int, Counts], hand).get(w.one_class.id or 0))

    # -- a college: /summary of a college, its figures and each class's
    async def college_ours(session: AsyncSession) -> object:
        [whole] = await unit_figures(
            session, units=[w.college], day=day, off_units=off, enrolled_by=enrolled_by
        )
        parts = await unit_figures(
            session, units=w.classes, day=day, off_units=off, enrolled_by=enrolled_by
        )
        return whole, parts

    async def college_hand(conn: AsyncConnection) -> object:
        whole = await hand_figures(conn, w, [w.college.id])
        parts = await hand_figures(conn, w, [u.id for u in w.classes])
        return {**whole, **parts}

    def college_same(ours: object, hand: object) -> str | None:
        whole, parts = cast(tuple[Figures, list[Figures]], ours)
        got = cast(dict[int, Counts], hand)
        mine = {f.unit_id: _counts(f) for f in (whole, *parts)}
        zero = (0,) * 9
        theirs = {u.id: got.get(u.id or 0, zero) for u in (w.college, *w.classes)}
        return _differ(mine, theirs)

    # -- the organisation: /summary of an administrator, each college and the total
    async def org_ours(session: AsyncSession) -> object:
        parts = await unit_figures(
            session, units=w.roots, day=day, off_units=off, enrolled_by=enrolled_by
        )
        return total(w.org.name, parts), parts

    async def org_hand(conn: AsyncConnection) -> object:
        parts = await hand_figures(conn, w, under)
        figures = [_figures(u, parts.get(u.id or 0)) for u in w.roots]
        return total(w.org.name, figures), figures

    def org_same(ours: object, hand: object) -> str | None:
        (a, a_parts), (b, b_parts) = (
            cast(tuple[Figures, list[Figures]], ours),
            cast(tuple[Figures, list[Figures]], hand),
        )
        return _differ([_counts(f) for f in (a, *a_parts)], [_counts(f) for f in (b, *b_parts)])

    # -- today's missing list of the organisation (the cutoff round's list, /missing's rows)
    missing_where = MISSING_WHERE.format(
        off=f"AND m.unit_id NOT IN ({_ids(sorted(off))})" if off else ""
    )
    missing_sql = MISSING_SQL.format(where=missing_where)

    async def missing_ours(session: AsyncSession) -> object:
        return await member_days(
            session,
            org_id=w.org_id,
            day=day,
            under=under,
            statuses={DayStatus.MISSING},
            off_units=off,
            enrolled_by=enrolled_by,
        )

    async def missing_hand(conn: AsyncConnection) -> object:
        return (await conn.exec_driver_sql(missing_sql, w.params())).all()

    def missing_same(ours: object, hand: object) -> str | None:
        mine = [
            (
                m.member_id,
                m.external_id,
                m.name,
                m.unit_id,
                m.unit_path,
                m.account_id,
                m.language,
                m.unreachable,
            )
            for m in cast(list[MemberDay], ours)
        ]
        theirs = [(*r[:7], bool(r[7])) for r in cast(list[tuple[object, ...]], hand)]
        return _differ(mine, theirs)

    # -- /missing for the organisation: its first page and the count in its title
    async def page_ours(session: AsyncSession) -> object:
        rows = await member_days(
            session,
            org_id=w.org_id,
            day=day,
            under=under,
            statuses={DayStatus.MISSING},
            off_units=off,
            enrolled_by=enrolled_by,
            limit=PAGE + 1,
        )
        count = await count_member_days(
            session,
            org_id=w.org_id,
            day=day,
            under=under,
            statuses={DayStatus.MISSING},
            off_units=off,
            enrolled_by=enrolled_by,
        )
        return rows, count

    async def page_hand(conn: AsyncConnection) -> object:
        rows = await conn.exec_driver_sql(f"{missing_sql} LIMIT {PAGE + 1}", w.params())
        page = rows.all()
        count = await conn.exec_driver_sql(
            MISSING_COUNT_SQL.format(where=missing_where), w.params()
        )
        return page, count.scalar_one()

    def page_same(ours: object, hand: object) -> str | None:
        rows, count = cast(tuple[list[MemberDay], int], ours)
        page, n = cast(tuple[list[tuple[object, ...]], int], hand)
        return missing_same(rows, page) or _differ(count, n)

    # -- a one-day export of every member: /export's rows, summary and .xlsx
    questions = load_form(w.org.form).questions
    zone = ZoneInfo(w.org.timezone)
    detail_sql = DETAIL_SQL.format(status=_status_sql(w))
    hand_parts: list[tuple[float, float, float]] = []

    async def export_ours(session: AsyncSession) -> object:
        # What the bot's worker thread runs (`storage.export.make_export`), on this session:
        # rows streamed from the database a few thousand at a time into a temporary file.
        with tempfile.TemporaryFile() as out:
            rows = await write_export(session, org=w.org, first=day, last=day, under=None, out=out)
            out.seek(0)
            data = out.read()
        return rows, _sheets(data)

    async def export_hand(conn: AsyncConnection) -> object:
        # The workbook /export makes: typed cells in the organisation's words, the summary a
        # row per unit of every level (tree order) and the total.
        words = words_for(w.org.language)
        layout = detail_layout(w.org, words)
        answers = AnswerValues(words.answer_lang)
        reasons_of = words.reasons(questions)
        t0 = now()
        found = (await conn.exec_driver_sql(detail_sql, w.params())).all()
        blank: list[Cell] = [None] * (len(layout.header) - 5)
        rows: list[list[Cell]] = []
        for (
            path,
            external_id,
            name,
            st,
            at,
            lat,
            lon,
            province,
            city,
            abn,
            reasons,
            answered,
        ) in cast(list[tuple[Any, ...]], found):
            head: list[Cell] = [day, path, external_id, name, words.status[DayStatus(st)]]
            if st != "reported":
                rows.append([*head, *blank])
                continue
            given = json.loads(answered)
            submitted = datetime.fromisoformat(at).replace(tzinfo=UTC).astimezone(zone)
            rows.append(
                [
                    *head,
                    submitted.replace(tzinfo=None, microsecond=0),
                    None if lat is None else float(lat),
                    None if lon is None else float(lon),
                    place(province, city) or None,
                    words.yes if abn else words.no,
                    reasons_of(json.loads(reasons)) or None,
                    *(answers(q, given.get(q.id)) for q in questions),
                ]
            )
        t1 = now()
        units = sorted(
            cast(
                list[tuple[int, str, int | None]],
                (await conn.exec_driver_sql(UNITS_SQL, w.params())).all(),
            ),
            key=lambda u: tuple(u[1].split("/")),
        )
        figures = await hand_figures(conn, w, [u[0] for u in units])
        summary: list[list[Cell]] = []
        roots: list[Figures] = []
        for unit_id, name_path, parent_id in units:
            counts = figures.get(unit_id)
            f = _figures(Unit(id=unit_id, name=name_path, name_path=name_path, org_id=0), counts)
            summary.append(summary_row(day, name_path, f))
            if parent_id is None:
                roots.append(f)
        summary.append(summary_row(day, words.total, total(words.total, roots)))
        t2 = now()
        data = write_xlsx(
            layout.header,
            rows,
            summary,
            formats=layout.formats,
            summary_header=layout.summary_header,
            sheets=layout.sheets,
        )
        hand_parts.append((t1 - t0, t2 - t1, now() - t2))
        return len(rows), _sheets(data)

    def export_same(ours: object, hand: object) -> str | None:
        return _differ(ours, hand)

    found = [
        Query(
            "class summary (1 class, 50 members)",
            CLASS_GOAL_MS,
            class_ours,
            class_hand,
            class_same,
            opts.fast_repeat,
        ),
        Query(
            f"college /summary (college + {len(w.classes)} classes)",
            None,
            college_ours,
            college_hand,
            college_same,
            opts.fast_repeat,
        ),
        Query(
            f"organisation roll-up ({len(w.roots)} colleges + total)",
            ORG_GOAL_MS,
            org_ours,
            org_hand,
            org_same,
            opts.repeat,
        ),
        Query(
            "today's missing list, organisation",
            None,
            missing_ours,
            missing_hand,
            missing_same,
            opts.repeat,
        ),
        Query(
            f"/missing first page ({PAGE}) + count, organisation",
            None,
            page_ours,
            page_hand,
            page_same,
            opts.repeat,
        ),
        Query(
            "one-day export, all members (.xlsx)",
            EXPORT_GOAL_MS,
            export_ours,
            export_hand,
            export_same,
            opts.export_repeat,
        ),
    ]
    EXPORT_PARTS["hand"] = hand_parts
    return found


EXPORT_PARTS: dict[str, list[tuple[float, float, float]]] = {}


def _sheets(xlsx: bytes) -> tuple[bytes, ...]:
    """A workbook's sheets, as XML: the same rows, widths and figures whatever its zip's dates."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as book:
        return tuple(
            book.read(n) for n in sorted(book.namelist()) if n.startswith("xl/worksheets/")
        )


def _differ(mine: object, theirs: object) -> str | None:
    if mine == theirs:
        return None
    text = f"ours {_short(mine)} != hand-written {_short(theirs)}"
    return text


def _short(value: object) -> str:
    if isinstance(value, list | tuple) and len(value) > 4:
        return f"{type(value).__name__} of {len(value)}: {value[:2]!r}..."
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


# --------------------------------------------------------------------------- timing
@dataclass
class Measured:
    query: Query
    ours_ms: list[float] = field(default_factory=list)
    hand_ms: list[float] = field(default_factory=list)
    mismatch: str | None = None

    @property
    def ours(self) -> float:
        return statistics.median(self.ours_ms)

    @property
    def hand(self) -> float:
        return statistics.median(self.hand_ms)

    @property
    def ratio(self) -> float:
        return self.ours / self.hand if self.hand > 0 else float("inf")

    @property
    def time_ok(self) -> bool:
        return self.query.goal_ms is None or self.ours <= self.query.goal_ms

    @property
    def ratio_ok(self) -> bool:
        return self.ratio <= RATIO_GOAL

    @property
    def ok(self) -> bool:
        return self.mismatch is None and self.time_ok and self.ratio_ok


async def measure(query: Query, engine: AsyncEngine, sessions: SessionFactory) -> Measured:
    """One warm-up of each (their results must agree), then `repeat` rounds of ours and the
    hand-written query, alternating so that both see the same machine. Each run gets a fresh
    session (ours) or connection (hand-written), checked out before the clock starts: a
    handler runs its queries on the session of its update."""

    async def ours() -> tuple[object, float]:
        async with sessions() as session:
            await session.connection()
            started = now()
            found = await query.ours(session)
            return found, now() - started

    async def hand() -> tuple[object, float]:
        async with engine.connect() as conn:
            started = now()
            found = await query.hand(conn)
            return found, now() - started

    result = Measured(query)
    (mine, _), (theirs, _) = await ours(), await hand()
    result.mismatch = query.same(mine, theirs)
    del mine, theirs
    gc.collect()  # once: collecting before each run would leave the next one on cold caches
    for _ in range(query.repeat):
        for run_, samples in ((ours, result.ours_ms), (hand, result.hand_ms)):
            _, took = await run_()
            samples.append(1000 * took)
    return result


# --------------------------------------------------------------------------- the bot's memory
@dataclass
class ExportLoad:
    """One /export of the whole organisation while members keep asking /today."""

    seconds: float  # /export sent -> its file received
    before_kib: int  # the bot's RSS just before
    peak_kib: int  # the bot's highest RSS sampled until the file arrived
    child_peak_kib: int  # the highest RSS of its child processes (the export's maker)
    during_ms: list[float]  # replies to /today asked while the export was under way
    idle_ms: list[float]  # the same, in the seconds before it
    slowest_at: float  # when the slowest of `during_ms` was asked, seconds after /export

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.before_kib) / 1024


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (p99 of 200 samples: the second highest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(len(ordered) * share)
    return ordered[max(0, min(len(ordered), rank) - 1)]


@dataclass
class Memory:
    steps: list[tuple[str, int, float | None]] = field(default_factory=list)  # what, RSS, reply s
    exports: list[ExportLoad] = field(default_factory=list)
    peak_kib: int | None = None
    imports_kib: int | None = None  # a process that only imports aiogram's types
    failure: str | None = None

    def rss_mib(self, step: str) -> float | None:
        for name, kib, _ in self.steps:
            if name == step:
                return kib / 1024
        return None


def prepare_for_bot(path: Path, day: date) -> None:
    """Make the file safe for a bot process: an empty update journal (the fake numbers updates
    from 1 again) and no round due: every slot of yesterday and today is claimed already, so
    the in-process scheduler sends nothing and writes nothing while it is measured."""
    real_today = datetime.now(UTC).astimezone(ZoneInfo(TIMEZONE)).date()
    stamp = _stamp(datetime.now(UTC))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        for table_ in ("inboundupdate", "fsmrecord", "outbox"):
            db.execute(f"DELETE FROM {table_}")
        for claimed in sorted({real_today - timedelta(days=1), real_today, day}):
            db.executemany(
                "INSERT OR IGNORE INTO slotrun (org_id, scope, day, slot, started_at, due) "
                "VALUES (1, 'org', ?, ?, ?, 0)",
                [(claimed.isoformat(), name, stamp) for name, _ in DEFAULT.slots()],
            )
        db.execute("COMMIT")
    finally:
        db.close()


async def bot_memory(path: Path, day: date, opts: Options) -> Memory:
    """`python -m bot run` on the file, against the fake Bot API: its RSS once it polls, after
    an administrator's /summary of the whole organisation and /missing (and /export with
    --bot-export); each reply's latency as the administrator saw it."""
    memory = Memory()
    prepare_for_bot(path, day)
    workdir = Path(tempfile.mkdtemp(prefix="daka-bench-managers-"))
    try:
        async with FakeBotAPI() as server:
            env = child_env(
                {
                    "BOT_TOKEN": server.token,
                    "TELEGRAM_API_URL": server.url,
                    "DATABASE_URL": f"sqlite+aiosqlite:///{path}",
                    "LOG_LEVEL": "WARNING",
                }
            )
            argv = [sys.executable, "-m", "bot", "run"]
            bot = await start_bot("managers-bot", argv, env=env, workdir=workdir)
            try:
                await wait_until_polling(server, bot, POLL_WAIT_S)
                await asyncio.sleep(1.0)  # the first scheduler tick, the place table
                memory.steps.append(("polling", _rss(bot.pid), None))
                admin = server.user(ADMIN_ID)
                commands = [f"/summary {day}", f"/missing {day}"]
                for command in commands:
                    started = now()
                    reply = await admin.ask(command, timeout=REPLY_WAIT_S)
                    took = now() - started
                    expected = EXPECTED_REPLY[command.split()[0]]
                    if expected not in reply.text:
                        raise BenchError(f"{command}: unexpected reply {reply.text[:200]!r}")
                    memory.steps.append((command.split()[0], _rss(bot.pid), took))
                for _ in range(opts.export_rounds if opts.bot_export else 0):
                    memory.exports.append(await export_under_load(server, bot.pid, day))
                memory.peak_kib = process_memory(bot.pid).get("VmHWM")
            except (AssertionError, BenchError) as exc:
                memory.failure = f"{exc}\n{bot.log_tail()}"
            finally:
                code = await bot.stop()
            problems = bot.log_problems()
            if memory.failure is None and (code != 0 or problems):
                memory.failure = f"bot exited {code}, logged {dict(problems)}:\n{bot.log_tail()}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    memory.imports_kib = await _imports_rss()
    return memory


LOAD_CLIENTS = 10  # members asking /today over and over, each waiting for its answer
LOAD_PAUSE_S = 0.1  # between one member's answer and their next question
IDLE_S = 3.0  # of that load before /export
RSS_SAMPLE_S = 0.01
LATENCY_GOAL_MS = 300.0  # p99 of the others' replies while an export is made
EXPORT_MEMORY_GOAL_MIB = 250  # the highest RSS of the process that makes the export


async def export_under_load(server: FakeBotAPI, pid: int, day: date) -> ExportLoad:
    """Members ask /today in a loop; after `IDLE_S` the administrator asks for /export of the
    whole organisation; until the file arrives the RSS (VmRSS in /proc) of the bot and of its
    child processes (the export is made in one) is sampled every 10 ms. Latency: from pushing
    the update to the fake Telegram to the reply arriving there."""
    clients = [server.user(FIRST_TELEGRAM_ID + 4_999 * i) for i in range(LOAD_CLIENTS)]
    for client in clients:
        client.drain()
    asked: list[tuple[float, float]] = []  # when, how long
    stop = asyncio.Event()

    async def keep_asking(client: FakeUser) -> None:
        while not stop.is_set():
            started = now()
            await client.ask("/today", timeout=REPLY_WAIT_S)
            asked.append((started, now() - started))
            await asyncio.sleep(LOAD_PAUSE_S)

    peak = child_peak = 0

    async def sample() -> None:
        nonlocal peak, child_peak
        while not stop.is_set():
            peak = max(peak, _rss(pid))
            child_peak = max([child_peak, *(_rss(c) for c in _children(pid))])
            await asyncio.sleep(RSS_SAMPLE_S)

    load = [asyncio.create_task(keep_asking(c)) for c in clients]
    try:
        await asyncio.sleep(IDLE_S)
        before = _rss(pid)
        sampler = asyncio.create_task(sample())
        started = now()
        document = await server.user(ADMIN_ID).ask(f"/export {day}", timeout=REPLY_WAIT_S)
        ended = now()
        stop.set()
        await sampler
        await asyncio.gather(*load)
    finally:
        stop.set()
        for task in load:
            task.cancel()
    if not (document.file_name or "").endswith(".xlsx") or f"{day}" not in document.text:
        raise BenchError(f"/export: unexpected reply {document.text[:200]!r}")
    during = [(at, took) for at, took in asked if started <= at <= ended]
    return ExportLoad(
        seconds=ended - started,
        before_kib=before,
        peak_kib=peak,
        child_peak_kib=child_peak,
        during_ms=[1000 * took for _, took in during],
        idle_ms=[1000 * took for at, took in asked if at < started],
        slowest_at=max(during, key=lambda d: d[1], default=(started, 0))[0] - started,
    )


async def _imports_rss() -> int | None:
    """RSS of a Python process that imports aiogram's types and nothing else: the part of the
    bot's memory that no data or query of ours decides."""
    code = (
        "import aiogram.types, pathlib; print(next(l.split()[1] for l in "
        "pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')))"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, env=child_env({})
    )
    out, _ = await proc.communicate()
    try:
        return int(out.decode().strip())
    except ValueError:
        return None


def _rss(pid: int) -> int:
    try:
        return process_memory(pid).get("VmRSS", 0)
    except OSError:
        return 0  # it has just exited


def _children(pid: int) -> list[int]:
    """The process's children and theirs (`/proc/PID/task/TID/children`)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found.extend(int(c) for c in (task / "children").read_text().split())
    except OSError:
        return found
    return found + [g for c in found for g in _children(c)]


# --------------------------------------------------------------------------- report
def report(
    shape: Shape, path: Path, results: Sequence[Measured], memory: Memory | None, opts: Options
) -> bool:
    info = machine()
    load = os.getloadavg()
    print(
        f"machine: {info['cpus']} CPUs, {info['implementation']} {info['python']}, "
        f"{info['platform']}, event loop {info['event loop']}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"data: {path.name} ({path.stat().st_size / 2**20:,.0f} MiB): {shape.members:,} members "
        f"in {shape.classes:,} classes under {shape.colleges} colleges, {shape.days} days of "
        f"check-ins to {TODAY} (the measured day)"
    )
    print(
        f"each figure: median (best) of {opts.repeat} runs after a warm-up ({opts.fast_repeat} "
        f"for the class and the college, {opts.export_repeat} for the export), ours and "
        "hand-written alternating, same engine, session/connection opened before the clock"
    )
    head = ("query", "ours ms", "hand-written ms", "ratio", "goal", "result")
    rows = [head]
    ok = True
    for r in results:
        goal = f"<= {r.query.goal_ms:,.0f} ms, " if r.query.goal_ms is not None else ""
        verdict = "pass"
        if r.mismatch is not None:
            verdict = "FAIL: results differ"
        elif not r.time_ok and not r.ratio_ok:
            verdict = "FAIL: time, ratio"
        elif not r.time_ok:
            verdict = "FAIL: time"
        elif not r.ratio_ok:
            verdict = "FAIL: ratio"
        ok = ok and r.ok
        rows.append(
            (
                r.query.name,
                f"{r.ours:,.1f} ({min(r.ours_ms):,.1f})",
                f"{r.hand:,.1f} ({min(r.hand_ms):,.1f})",
                f"{r.ratio:.2f}",
                f"{goal}ratio <= {RATIO_GOAL}",
                verdict,
            )
        )
    if memory is not None:
        # The goal is the bot with the data loaded, answering summaries and lists; an export
        # holds its whole file in memory for a moment and is reported beside it.
        steady = [(name, kib) for name, kib, _ in memory.steps if name != "/export"]
        rss = max((kib for _, kib in steady), default=0) / 1024
        mem_ok = memory.failure is None and bool(steady) and rss <= MEMORY_GOAL_MIB
        ok = ok and mem_ok
        for e in memory.exports:
            late = percentile(e.during_ms, 0.99) if e.during_ms else float("inf")
            export_ok = (
                late <= LATENCY_GOAL_MS and e.child_peak_kib / 1024 <= EXPORT_MEMORY_GOAL_MIB
            )
            ok = ok and export_ok
            rows.append(
                (
                    "/export under load: others' p99, the export's peak RSS",
                    f"{late:,.0f} ms, {e.child_peak_kib / 1024:,.0f} MiB",
                    "-",
                    "-",
                    f"<= {LATENCY_GOAL_MS:.0f} ms, <= {EXPORT_MEMORY_GOAL_MIB} MiB",
                    "pass" if export_ok else "FAIL",
                )
            )
        after = ", ".join(f"{name} {kib / 1024:.0f}" for name, kib in steady)
        rows.append(
            (
                "bot RSS (MiB) after: " + (after or "-"),
                f"{rss:,.0f} MiB" if memory.steps else "-",
                "-",
                "-",
                f"<= {MEMORY_GOAL_MIB} MiB",
                "pass" if mem_ok else "FAIL",
            )
        )
    print(_table(rows))
    for r in results:
        if r.mismatch is not None:
            print(f"{r.query.name}: {r.mismatch}", file=sys.stderr)
    parts = EXPORT_PARTS.get("hand") or []
    if parts:
        # Ours streams rows from the database into the file: its parts overlap.
        rows_s, summary_s, xlsx_s = (statistics.median(p[i] for p in parts) for i in range(3))
        print(
            f"export, hand-written (median): detail rows {rows_s * 1000:,.0f} ms, summary "
            f"{summary_s * 1000:,.0f} ms, .xlsx {xlsx_s * 1000:,.0f} ms"
        )
    if memory is not None:
        for name, kib, took in memory.steps:
            if took is not None:
                print(f"bot: {name} answered in {took * 1000:,.0f} ms, RSS {kib / 1024:.0f} MiB")
        for n, e in enumerate(memory.exports, start=1):
            during, idle = e.during_ms, e.idle_ms
            print(
                f"bot: /export of {EXPORT_ROWS_LABEL} round {n}: file after {e.seconds:.2f} s; "
                f"meanwhile {len(during)} /today answered, p50 {percentile(during, 0.5):.0f} ms, "
                f"p99 {percentile(during, 0.99):.0f} ms, max {max(during, default=0):.0f} ms "
                f"(asked {e.slowest_at:.1f} s in) (before it: p50 {percentile(idle, 0.5):.0f}, "
                f"p99 {percentile(idle, 0.99):.0f} ms); bot RSS {e.before_kib / 1024:.0f} -> "
                f"peak {e.peak_kib / 1024:.0f} MiB (+{e.growth_mib:.0f}); the export's process "
                f"peak {e.child_peak_kib / 1024:.0f} MiB"
            )
        if memory.peak_kib is not None:
            print(f"bot: peak RSS (VmHWM) {memory.peak_kib / 1024:.0f} MiB")
        if memory.imports_kib is not None:
            print(
                f"for comparison: a process that only imports aiogram.types has an RSS of "
                f"{memory.imports_kib / 1024:.0f} MiB"
            )
        if memory.failure:
            print(f"bot FAILED: {memory.failure}", file=sys.stderr)
    if opts.json:
        line = {
            "machine": info,
            "load": load,
            "shape": asdict(shape),
            "results": [
                {
                    "query": r.query.name,
                    "ours_ms": [round(x, 2) for x in r.ours_ms],
                    "hand_ms": [round(x, 2) for x in r.hand_ms],
                    "ratio": round(r.ratio, 3),
                    "goal_ms": r.query.goal_ms,
                    "same": r.mismatch is None,
                    "ok": r.ok,
                }
                for r in results
            ],
            "bot_rss_kib": None if memory is None else dict((n, k) for n, k, _ in memory.steps),
            "bot_peak_kib": None if memory is None else memory.peak_kib,
            "exports_under_load": None if memory is None else [asdict(e) for e in memory.exports],
        }
        print(json.dumps(line, ensure_ascii=False))
    return ok


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:-2], widths[1:-2], strict=True)]
        cells += [row[-2].ljust(widths[-2]), row[-1]]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
@dataclass(frozen=True)
class Options:
    shape: Shape
    regenerate: bool
    repeat: int
    export_repeat: int
    bot: bool
    bot_export: bool
    export_rounds: int
    json: bool

    @property
    def fast_repeat(self) -> int:
        """Runs of the queries that take a millisecond or so, where 5 samples are noise."""
        return max(self.repeat, FAST_REPEAT)


async def run(opts: Options) -> int:
    shape = opts.shape
    path = shape.file()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if opts.regenerate or not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        await asyncio.to_thread(generate, shape, path)
    else:
        print(f"reusing {path} (--regenerate to build it again)", file=sys.stderr)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    try:
        started = now()
        await upgrade(engine)  # a file generated before a new migration gets it (an index)
        if now() - started > 1:
            print(f"migrated the file in {now() - started:.1f} s", file=sys.stderr)
        sessions = create_session_factory(engine)
        world = await load_world(sessions, TODAY)
        results = []
        for query in queries(world, opts):
            print(f"measuring {query.name} ...", file=sys.stderr)
            results.append(await measure(query, engine, sessions))
    finally:
        await engine.dispose()
    memory = None
    if opts.bot:
        print("measuring the bot's memory ...", file=sys.stderr)
        memory = await bot_memory(path, TODAY, opts)
    return 0 if report(shape, path, results, memory, opts) else 1


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.managers",
        description="Managers' summaries, missing lists and exports on a big organisation, "
        "against hand-written SQL; and the bot's memory.",
    )
    parser.add_argument("--members", type=int, default=100_000, help="members (100,000)")
    parser.add_argument("--classes", type=int, default=2_000, help="classes (2,000)")
    parser.add_argument("--colleges", type=int, default=20, help="colleges (20)")
    parser.add_argument("--days", type=int, default=30, help="days of check-ins (30)")
    parser.add_argument(
        "--regenerate", action="store_true", help="build the data file again even if cached"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (5)")
    parser.add_argument(
        "--export-repeat", type=int, default=3, help="timed runs of the export (3)"
    )
    parser.add_argument("--no-bot", action="store_true", help="skip the bot's memory")
    parser.add_argument(
        "--bot-export",
        action="store_true",
        help="also send /export to the bot while members keep asking /today: their reply "
        "latency and the bot's RSS while the export is made",
    )
    parser.add_argument(
        "--export-rounds", type=int, default=3, help="exports under load with --bot-export (3)"
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    args = parser.parse_args(argv)
    if min(args.members, args.classes, args.colleges, args.days, args.repeat) < 1:
        parser.error("--members, --classes, --colleges, --days, --repeat must be at least 1")
    if args.classes < args.colleges or args.members < args.classes:
        parser.error("every college needs a class and every class a member")
    return Options(
        shape=Shape(args.members, args.classes, args.colleges, args.days),
        regenerate=args.regenerate,
        repeat=args.repeat,
        export_repeat=max(args.export_repeat, 1),
        bot=not args.no_bot,
        bot_export=args.bot_export,
        export_rounds=max(args.export_rounds, 1),
        json=args.json,
    )


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        return asyncio.run(run(opts))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
