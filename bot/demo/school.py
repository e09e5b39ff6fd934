"""The demo's sample school, set up by the `daka` commands an administrator would type.

Each step is a command line (``org create``, ``roster import``, ``role grant``, ``invite``...)
parsed by the CLI's own parser and run by the CLI's own command, one transaction each, so the demo
shows what those commands make and breaks when they do. The people who play it are personas:
simulated Telegram users the web chat speaks for.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import Settings
from bot.demo.warmup import Classmate
from domain.clock import Clock
from domain.enrolment import invite_problem
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from storage.repo import Repo

SLUG = "demo-school"


@dataclass(frozen=True)
class Persona:
    """A Telegram user of the demo: who they are in the school, and what to type as them."""

    telegram_id: int
    name: str
    role: str  # shown under the name: "student, Class 1", "grade head (manager)"
    language_code: str
    invite: str | None = None  # "member" or "manager": the invite this persona enrols with
    suggestions: tuple[str, ...] = ()  # what enrolment asks them to type (id, name)


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float


@dataclass
class Sample:
    """What the demo seeds in one language."""

    name: str
    language: str
    units: tuple[str, ...]
    roster: tuple[tuple[str, str, str], ...]  # unit path, member id, name
    personas: tuple[Persona, ...]
    places: tuple[Place, ...]
    grade: str  # the unit the grade head manages
    classmates: tuple[Classmate, ...]  # who has checked in before the person arrives
    invites: dict[str, str] = field(default_factory=dict)  # role -> code, once seeded


# The school stands near Beijing's Shichahai; its geofence is 3 km around the gate.
SCHOOL = (39.9385, 116.3790)
GEOFENCE_M = 3000


def sample(language: str) -> Sample:
    """The sample school in ``language`` ("zh" or "en")."""
    if language == "en":
        grade, one, two = "Grade 7", "Grade 7/Class 1", "Grade 7/Class 2"
        roster = (
            (one, "2025001", "Alice Zhang"),
            (one, "2025002", "Bob Li"),
            (one, "2025003", "Carol Wang"),
            (two, "2025004", "David Zhao"),
            (two, "2025005", "Emma Sun"),
            (two, "2025006", "Frank Zhou"),
        )
        personas = (
            _student(1001, roster[0], "student, Class 1", "en"),
            _student(1002, roster[1], "student, Class 1", "en"),
            _student(1004, roster[3], "student, Class 2", "en"),
            Persona(2001, "Ms. Wang", "grade head (manager of Grade 7)", "en"),
            Persona(
                2002, "Mr. Liu", "class teacher: enrols as manager of Class 1", "en", "manager"
            ),
        )
        places = (
            Place("School gate", *SCHOOL),
            Place("Home (2 km away)", 39.9470, 116.4020),
            Place("Shanghai (outside the area)", 31.2304, 121.4737),
        )
        return Sample(
            "Riverside Middle School (demo)",
            "en",
            (one, two),
            roster,
            personas,
            places,
            grade,
            _classmates(roster, places),
        )
    grade, one, two = "初一年级", "初一年级/一班", "初一年级/二班"
    roster = (
        (one, "2025001", "张三"),
        (one, "2025002", "李四"),
        (one, "2025003", "王五"),
        (two, "2025004", "赵六"),
        (two, "2025005", "孙七"),
        (two, "2025006", "周八"),
    )
    personas = (
        _student(1001, roster[0], "学生，一班", "zh-hans"),
        _student(1002, roster[1], "学生，一班", "zh-hans"),
        _student(1004, roster[3], "学生，二班", "zh-hans"),
        Persona(2001, "王老师", "年级组长（初一年级管理员）", "zh-hans"),
        Persona(2002, "刘老师", "班主任：用管理员邀请加入一班", "zh-hans", "manager"),
    )
    places = (
        Place("学校大门", *SCHOOL),
        Place("家（2 公里外）", 39.9470, 116.4020),
        Place("上海（区域外）", 31.2304, 121.4737),
    )
    return Sample(
        "第一中学（演示）",
        "zh",
        (one, two),
        roster,
        personas,
        places,
        grade,
        _classmates(roster, places),
    )


def _classmates(
    roster: tuple[tuple[str, str, str], ...], places: tuple[Place, ...]
) -> tuple[Classmate, ...]:
    """The third student of each class: one well at home, one with a fever far away."""
    home, far = places[1], places[2]
    return (
        Classmate(
            1003, roster[2][1], roster[2][2], (home.latitude, home.longitude), "36.5", ("none",)
        ),
        Classmate(
            1005,
            roster[4][1],
            roster[4][2],
            (far.latitude, far.longitude),
            "37.8",
            ("fever", "cough"),
        ),
    )


def _student(telegram_id: int, row: tuple[str, str, str], role: str, lang: str) -> Persona:
    _, member_id, name = row
    return Persona(telegram_id, name, role, lang, "member", (member_id, name))


async def seed(sample: Sample, settings: Settings, clock: Clock, folder: Path) -> bool:
    """Create the school with `daka` commands unless the database has it already (a reused
    ``--data`` folder), and a member and a manager invite unless usable ones are left; fill
    ``sample.invites`` with their codes. True when the school is new."""
    engine = create_engine(settings.database_url)
    try:
        await upgrade(engine)
        sessions = create_session_factory(engine)
        async with sessions() as session:
            existing = await Repo(session).orgs.by_slug(slug=SLUG)
        if existing is None:
            roster = folder / "demo-roster.csv"
            lines = ["unit,member_id,name", *(",".join(row) for row in sample.roster)]
            roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
            fence = f"{SCHOOL[0]},{SCHOOL[1]},{GEOFENCE_M}"
            manager = sample.personas[3]
            commands = [
                ["org", "create", SLUG, "--name", sample.name, "--language", sample.language],
                ["org", "set", SLUG, "--geofence", fence],
                ["roster", "import", SLUG, str(roster)],
                ["role", "grant", SLUG, str(manager.telegram_id), "--unit", sample.grade],
            ]
            for argv in commands:
                await _daka(argv, settings, clock, sessions)
        invites = {
            "member": ["invite", SLUG, "--expires", "30"],
            "manager": ["invite", SLUG, "--unit", sample.units[0], "--role", "manager"],
        }
        for role, argv in invites.items():
            code = await _usable_invite(sessions, clock, role)
            if code is None:
                await _daka(argv, settings, clock, sessions)
                code = await _usable_invite(sessions, clock, role)
            assert code is not None
            sample.invites[role] = code
    finally:
        await engine.dispose()
    return existing is None


async def _usable_invite(sessions: SessionFactory, clock: Clock, role: str) -> str | None:
    async with sessions() as session:
        repo = Repo(session)
        org = await repo.orgs.require(slug=SLUG)
        for invite in await repo.invites.of_org(org_id=org.id or 0):
            problem = invite_problem(
                expires_at=invite.expires_at,
                revoked_at=invite.revoked_at,
                max_uses=invite.max_uses,
                uses=invite.uses,
                now=clock.now(),
            )
            if invite.role == role and problem is None:
                return invite.code
    return None


async def _daka(
    argv: list[str], settings: Settings, clock: Clock, sessions: SessionFactory
) -> None:
    """One `daka` command line, parsed and run as the CLI runs it (its output is not shown)."""
    from bot.cli import COMMANDS, build_parser, rewrite

    args = build_parser().parse_args(rewrite(argv))
    command = COMMANDS[(args.command, getattr(args, "action", None))]
    async with sessions() as session:
        with contextlib.redirect_stdout(io.StringIO()):
            await command(args, Repo(session), settings, clock)
        await session.commit()
