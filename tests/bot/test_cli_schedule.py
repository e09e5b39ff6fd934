"""`daka schedule`, `holiday`, `excuse`, `report` and `remind` as an admin scripts them: what
they print, and one line with exit 1 for every mistake. `remind` sends through a fake Telegram
Bot API served from a thread of its own (the CLI runs its own event loop)."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import SQLModel, select

from bot.cli import main
from domain.clock import FixedClock
from storage.db import create_engine, create_session_factory
from storage.models import AuditEntry, Excuse, Holiday, Identity, Outbox, SlotRun, UnitHoliday
from storage.repo import Repo, Submission
from tests.fakebot import FakeBotAPI
from tests.fakewecom import LocalWeCom
from tests.storage.seeding import telegram_account

T = TypeVar("T", bound=SQLModel)
SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 30)
# Monday 2026-11-30, 09:00 in Shanghai.
NINE = datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
ROSTER = (
    "unit,member_id,name\n"
    "Eng/C1,1001,Alice\n"
    "Eng/C1,1002,Bob\n"
    "Eng/C1,1003,Carol\n"
    "Eng/C2,2001,Dan\n"
    "Arts/A,3001,Eve\n"
)
# Everybody but Eve has enrolled; Alice and Bob (with a fever) have checked in on Monday.
TELEGRAM = {"1001": 11001, "1002": 11002, "1003": 11003, "2001": 12001}
REMINDER = "you have not checked in today (2026-11-30) yet"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path) -> str:
    """A folder with its database at the head (a copy of the run's template)."""
    shutil.copyfile(sqlite_template, tmp_path / "daka.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BOT_USERNAME", "daka_test_bot")
    monkeypatch.setenv("SEND_RATE", "200")
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return url


def daka(
    capsys: pytest.CaptureFixture[str], *args: str, at: datetime = NINE
) -> tuple[int, str, str]:
    code = main(list(args), clock=FixedClock(at))
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The command exits 1 with one line on stderr (returned, without "daka: ")."""
    code, out, err = daka(capsys, *args)
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip().removeprefix("daka: ")


async def enrol_and_check_in(url: str) -> None:
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="no1")
            for external_id, telegram_id in TELEGRAM.items():
                member = await repo.members.by_external(
                    org_id=org.id or 0, external_id=external_id
                )
                assert member is not None
                account_id = await telegram_account(repo, telegram_id, now=NINE)
                await repo.members.bind(member=member, account_id=account_id, now=NINE)
                if external_id in ("1001", "1002"):
                    fever = external_id == "1002"
                    await repo.checkins.submit(
                        member=member,
                        local_day=MONDAY,
                        form="health",
                        form_version=1,
                        submission=Submission(
                            answers={"temperature": 38.4 if fever else 36.6},
                            abnormal=fever,
                            reasons=["temperature"] if fever else [],
                        ),
                        update_id=None,
                        now=NINE,
                    )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture
def school(env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    """Organisation no1 (English), units Eng/C1, Eng/C2, Arts/A; see ROSTER and TELEGRAM."""
    assert daka(capsys, "org", "create", "no1", "--name", "No1 School", "--language", "en")[0] == 0
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    assert daka(capsys, "roster", "import", "no1", str(tmp_path / "roster.csv"))[0] == 0
    asyncio.run(enrol_and_check_in(env))
    return env


async def rows(url: str, model: type[T]) -> list[T]:
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.exec(select(model))).all())
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- schedule
def test_schedules_are_shown_and_set_for_the_organisation_and_a_unit(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "schedule", "show", "no1")
    assert code == 0
    assert out.splitlines() == [
        "no1 (Asia/Shanghai) default",
        "  remind 08:00,10:00,12:00, cutoff 14:00, report 15:00, days mon,tue,wed,thu,fri,sat,sun",
    ]
    code, out, _ = daka(
        capsys,
        "schedule", "set", "no1",
        "--remind", "9:00,7:30,9:00", "--cutoff", "11:00", "--report", "12:00",
        "--days", "mon-fri",
    )  # fmt: skip
    assert code == 0
    assert (
        out.strip()
        == "no1: remind 07:30,09:00, cutoff 11:00, report 12:00, days mon,tue,wed,thu,fri"
    )
    code, out, _ = daka(
        capsys,
        "schedule", "set", "no1", "--unit", "Eng/C2",
        "--remind", "08:00", "--cutoff", "09:00", "--report", "10:00", "--days", "sat,sun",
    )  # fmt: skip
    assert code == 0
    assert out.strip() == "Eng/C2: remind 08:00, cutoff 09:00, report 10:00, days sat,sun"
    # Setting again replaces, for the organisation as for the unit.
    daka(capsys, "schedule", "set", "no1", "--unit", "Eng/C2", "--remind", "08:30",
         "--cutoff", "09:00", "--report", "10:00", "--days", "sat-sun")  # fmt: skip
    code, out, _ = daka(capsys, "schedule", "show", "no1")
    assert out.splitlines() == [
        "no1 (Asia/Shanghai)",
        "  remind 07:30,09:00, cutoff 11:00, report 12:00, days mon,tue,wed,thu,fri",
        "Eng/C2:",
        "  remind 08:30, cutoff 09:00, report 10:00, days sat,sun",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--remind", "25:00"], "'25:00' is not a time like 08:00"),
        (["--remind", "8h"], "'8h' is not a time like 08:00"),
        (["--remind", ","], "give at least one reminder time"),
        (["--cutoff", "noon"], "'noon' is not a time like 08:00"),
        (["--report", "15:60"], "'15:60' is not a time like 08:00"),
        (["--remind", "12:00,14:30"], "reminders must come before the cutoff"),
        (["--days", "funday"], "'funday' is not a weekday"),
        (["--days", ","], "give the days that count"),
        (["--unit", "Eng/C9"], "no unit 'Eng/C9'"),
    ],
)
def test_a_bad_schedule_is_one_line_and_changes_nothing(
    school: str, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    base = {"--remind": "08:00", "--cutoff": "14:00", "--report": "15:00", "--days": "mon-fri"}
    args = dict(base)
    args.update(zip(change[::2], change[1::2], strict=True))
    assert message in fails(
        capsys, "schedule", "set", "no1", *(x for kv in args.items() for x in kv)
    )
    _, out, _ = daka(capsys, "schedule", "show", "no1")
    assert out.splitlines()[0] == "no1 (Asia/Shanghai) default" and "Eng/C9" not in out


def test_schedule_of_an_unknown_organisation(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert fails(capsys, "schedule", "show", "nope") == "no organisation 'nope'"


def test_a_unit_schedule_inherits_what_is_not_given(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "schedule", "set", "no1", "--remind", "07:30", "--cutoff", "11:00",
         "--report", "12:00", "--days", "mon-fri")  # fmt: skip
    code, out, _ = daka(capsys, "schedule", "set", "no1", "--unit", "Eng", "--remind", "08:00")
    assert code == 0
    assert out.strip() == "Eng: remind 08:00, cutoff 11:00, report 12:00, days mon,tue,wed,thu,fri"
    # Eng/C2 starts from Eng's schedule, the unit above it, not the organisation's.
    code, out, _ = daka(capsys, "schedule", "set", "no1", "--unit", "Eng/C2", "--days", "sat")
    assert out.strip() == "Eng/C2: remind 08:00, cutoff 11:00, report 12:00, days sat"
    code, out, _ = daka(capsys, "schedule", "set", "no1", "--report", "13:00")
    assert out.strip() == "no1: remind 07:30, cutoff 11:00, report 13:00, days mon,tue,wed,thu,fri"
    assert fails(capsys, "schedule", "set", "no1", "--unit", "Eng") == (
        "nothing to set: give --remind, --cutoff, --report or --days"
    )
    assert fails(capsys, "schedule", "set", "no1", "--remind", "11:30") == (
        "reminders must come before the cutoff"
    )


# --------------------------------------------------------------------------- holidays
def test_holidays_are_added_once_and_a_bad_date_adds_none(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "holiday", "add", "no1", "2026-12-25", "2027-01-01")
    assert code == 0 and out.strip() == "2 holiday(s) added, 0 already known"
    code, out, _ = daka(capsys, "holiday", "add", "no1", "2027-01-01", "2027-01-02")
    assert code == 0 and out.strip() == "1 holiday(s) added, 1 already known"
    message = fails(capsys, "holiday", "add", "no1", "2027-02-10", "2027-02-30")
    assert message == "'2027-02-30' is not a date like 2026-11-28"
    assert fails(capsys, "holiday", "add", "no1", "tomorrow") == (
        "'tomorrow' is not a date like 2026-11-28"
    )
    _, out, _ = daka(capsys, "schedule", "show", "no1")
    assert out.splitlines()[-1] == "holidays: 2026-12-25, 2027-01-01, 2027-01-02"


def test_holidays_are_listed_and_removed(school: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = daka(capsys, "holiday", "list", "no1")
    assert (code, out) == (0, "no holidays in no1\n")
    daka(capsys, "holiday", "add", "no1", "2026-12-25", "2027-01-01")
    daka(capsys, "holiday", "add", "no1", "2026-12-24", "2026-12-25", "--unit", "Eng")
    code, out, _ = daka(capsys, "holiday", "list", "no1")
    assert out.splitlines() == [
        "2026-12-24 Thu\tEng",
        "2026-12-25 Fri\tEng",
        "2026-12-25 Fri\twhole organisation",
        "2027-01-01 Fri\twhole organisation",
    ]
    code, out, _ = daka(capsys, "holiday", "remove", "no1", "2026-12-25", "2026-12-26")
    assert (code, out) == (0, "1 holiday(s) removed, 1 were not holidays\n")
    code, out, _ = daka(capsys, "holiday", "remove", "no1", "2026-12-24", "--unit", "Eng")
    assert (code, out) == (0, "1 holiday(s) of Eng removed, 0 were not holidays\n")
    _, out, _ = daka(capsys, "holiday", "list", "no1")
    assert out.splitlines() == ["2026-12-25 Fri\tEng", "2027-01-01 Fri\twhole organisation"]
    assert fails(capsys, "holiday", "remove", "no1", "someday") == (
        "'someday' is not a date like 2026-11-28"
    )


# The days an admin may name on 2026-11-30: the window the bot itself keeps (domain.clock).
OUT_OF_RANGE = "is out of range: give a day from 2016-11-22 to 2027-12-01"


@pytest.mark.parametrize(
    "args",
    [
        ["holiday", "add", "no1", "2026-12-25", "0001-01-01"],
        ["holiday", "add", "no1", "2027-12-02", "--unit", "Eng"],
        ["excuse", "no1", "1003", "--from", "2026-11-30", "--to", "9999-12-31", "--reason", "x"],
        ["excuse", "no1", "1003", "--from", "2016-11-21", "--to", "2016-11-22", "--reason", "x"],
    ],
)
def test_days_beyond_what_the_bot_keeps_are_refused_and_nothing_is_stored(
    school: str, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """Regression: a holiday in year 1 or an excuse running to 9999-12-31 was simply stored."""
    day = next(a for a in args if a in ("0001-01-01", "2027-12-02", "9999-12-31", "2016-11-21"))
    assert fails(capsys, *args) == f"{day} {OUT_OF_RANGE}"
    assert asyncio.run(rows(school, Holiday)) == []
    assert asyncio.run(rows(school, UnitHoliday)) == []
    assert asyncio.run(rows(school, Excuse)) == []


def test_the_edges_of_the_window_are_days_like_any_other(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "holiday", "add", "no1", "2016-11-22", "2027-12-01")
    assert (code, out) == (0, "2 holiday(s) added, 0 already known\n")
    code, out, _ = daka(
        capsys, "excuse", "no1", "1003", "--from", "2027-11-30", "--to", "2027-12-01",
        "--reason", "trip",
    )  # fmt: skip
    assert (code, out) == (0, "Carol (1003) excused 2027-11-30 to 2027-12-01: trip\n")
    # The window moves with the organisation's today: a year on, 2016-11-22 is too old.
    code, _, err = daka(
        capsys, "report", "no1", "--date", "2016-11-22", at=NINE.replace(year=2027)
    )
    assert (code, err) == (1, "daka: 2016-11-22 is out of range: give a day from 2017-11-22 "
                              "to 2028-11-30\n")  # fmt: skip


# --------------------------------------------------------------------------- excuses
def test_an_excuse_is_stored_audited_and_counted(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(
        capsys, "excuse", "no1", "1003", "--from", "2026-11-30", "--to", "2026-12-02",
        "--reason", "  sick leave ",
    )  # fmt: skip
    assert code == 0
    assert out.strip() == "Carol (1003) excused 2026-11-30 to 2026-12-02: sick leave"
    [excuse] = asyncio.run(rows(school, Excuse))
    assert (excuse.first_day, excuse.last_day) == (date(2026, 11, 30), date(2026, 12, 2))
    assert (excuse.reason, excuse.created_by) == ("sick leave", "cli")
    [entry] = asyncio.run(rows(school, AuditEntry))
    assert (entry.actor, entry.action, entry.subject) == ("cli", "excuse", "1003")
    assert entry.detail == "2026-11-30..2026-12-02: sick leave"
    assert entry.at == NINE.astimezone(UTC)
    _, out, _ = daka(capsys, "report", "no1", "--unit", "Eng/C1")
    assert "C1: expected 2, reported 2 (100%), missing 0, abnormal 1, excused 1," in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9999", "--from", "2026-11-30", "--to", "2026-11-30"], "no member '9999' in no1"),
        (["1003", "--from", "2026-12-02", "--to", "2026-12-01"], "--to is before --from"),
        (["1003", "--from", "2026-11-31", "--to", "2026-12-01"], "'2026-11-31' is not a date"),
        (["1003", "--from", "2026-11-30", "--to", "2026-12-01", "--reason", " "],
         "--reason must not be empty"),
    ],
)  # fmt: skip
def test_a_bad_excuse_is_one_line_and_stores_nothing(
    school: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    reason = [] if "--reason" in args else ["--reason", "sick"]
    assert message in fails(capsys, "excuse", "no1", *args, *reason)
    assert asyncio.run(rows(school, Excuse)) == []
    assert asyncio.run(rows(school, AuditEntry)) == []


def test_excuses_are_listed_and_cancelled(school: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = daka(capsys, "excuse", "list", "no1")
    assert (code, out) == (0, "no excuses in no1\n")
    daka(capsys, "excuse", "no1", "1003", "--from", "2026-11-30", "--to", "2026-12-02",
         "--reason", "sick leave")  # fmt: skip
    daka(capsys, "excuse", "add", "no1", "2001", "--from", "2026-11-29", "--to", "2026-11-30",
         "--reason", "family")  # fmt: skip
    code, out, _ = daka(capsys, "excuse", "list", "no1")
    assert out.splitlines() == [
        "id\tmember_id\tname\tfrom\tto\treason\tby",
        "2\t2001\tDan\t2026-11-29\t2026-11-30\tfamily\tcli",
        "1\t1003\tCarol\t2026-11-30\t2026-12-02\tsick leave\tcli",
    ]
    _, out, _ = daka(capsys, "excuse", "list", "no1", "--member", "1003")
    assert out.splitlines()[1:] == ["1\t1003\tCarol\t2026-11-30\t2026-12-02\tsick leave\tcli"]
    code, out, _ = daka(capsys, "excuse", "cancel", "no1", "1")
    assert (code, out) == (
        0,
        "cancelled excuse 1: Carol (1003) 2026-11-30 to 2026-12-02: sick leave\n",
    )
    assert [e.id for e in asyncio.run(rows(school, Excuse))] == [2]
    entries = asyncio.run(rows(school, AuditEntry))
    assert [(e.action, e.subject) for e in entries][-1] == ("excuse.cancel", "1003")
    _, out, _ = daka(capsys, "report", "no1", "--unit", "Eng/C1")
    assert "excused 0," in out
    assert fails(capsys, "excuse", "cancel", "no1", "1") == (
        "no excuse 1 in no1 (see daka excuse list)"
    )
    big = "999999999999999999999"  # beyond 64 bits: "failed: OverflowError" before
    assert fails(capsys, "excuse", "cancel", "no1", big) == (
        f"no excuse {big} in no1 (see daka excuse list)"
    )
    assert fails(capsys, "excuse", "list", "no1", "--member", "9999") == "no member '9999' in no1"
    _, out, _ = daka(capsys, "excuse", "list", "no1", "--member", "1003")
    assert out == "no excuses in no1 for 1003\n"


# --------------------------------------------------------------------------- reports
def test_the_report_prints_the_figures_of_the_organisation_and_of_a_unit(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "report", "no1")
    assert code == 0
    assert out.splitlines() == [
        "📊 Daily report 2026-11-30 — No1 School · the whole organisation",
        "",
        "No1 School: expected 4, reported 2 (50%), missing 2, abnormal 1, excused 0, "
        "not enrolled 1, unreachable 0",
        "",
        "By unit",
        "• Arts: expected 0, reported 0 (—), missing 0, abnormal 0, excused 0, not enrolled 1, "
        "unreachable 0",
        "• Eng: expected 4, reported 2 (50%), missing 2, abnormal 1, excused 0, not enrolled 0, "
        "unreachable 0",
        "",
        "Abnormal",
        "• Bob (Eng/C1): Temperature",
    ]
    code, out, _ = daka(capsys, "report", "no1", "--unit", "Eng")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "📊 Daily report 2026-11-30 — No1 School · Eng"
    assert lines[2].startswith("Eng: expected 4, reported 2 (50%), missing 2, abnormal 1,")
    assert lines[5].startswith("• C1: expected 3, reported 2 (67%), missing 1, abnormal 1,")
    assert lines[6].startswith("• C2: expected 1, reported 0 (0%), missing 1, abnormal 0,")
    assert "• Bob (Eng/C1): Temperature" in lines
    # Tuesday: nobody has checked in yet.
    code, out, _ = daka(capsys, "report", "no1", "--date", "2026-12-01")
    assert code == 0 and "📊 Daily report 2026-12-01" in out
    assert "No1 School: expected 4, reported 0 (0%), missing 4, abnormal 0," in out
    assert "No abnormal check-ins." in out and "Zero report" not in out
    # Without --date the clock decides: just after midnight it is Tuesday in Shanghai.
    tuesday = datetime(2026, 11, 30, 16, 1, tzinfo=UTC)
    _, out, _ = daka(capsys, "report", "no1", at=tuesday)
    assert "📊 Daily report 2026-12-01" in out and "reported 0 (0%), missing 4" in out


def test_a_report_where_nobody_is_expected_is_a_zero_report(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Eng/C2 checks in at weekends only; Christmas is a holiday for everybody.
    daka(capsys, "schedule", "set", "no1", "--unit", "Eng/C2", "--remind", "08:00",
         "--cutoff", "09:00", "--report", "10:00", "--days", "sat,sun")  # fmt: skip
    daka(capsys, "holiday", "add", "no1", "2026-12-25")
    code, out, _ = daka(capsys, "report", "no1", "--unit", "Eng/C2")
    assert code == 0
    assert out.splitlines()[2:5] == [
        "Today is not a check-in day (holiday or day off).",
        "C2: expected 0, reported 0 (—), missing 0, abnormal 0, excused 0, not enrolled 0, "
        "unreachable 0",
        "Zero report: every figure is 0 today.",
    ]
    _, out, _ = daka(capsys, "report", "no1", "--unit", "Eng", "--date", "2026-12-25")
    assert "Today is not a check-in day" in out and "Zero report" in out
    assert "Eng: expected 0, reported 0 (—), missing 0," in out
    # The whole organisation on Christmas: nobody expected, but Eve has still not enrolled.
    _, out, _ = daka(capsys, "report", "no1", "--date", "2026-12-25")
    assert "Today is not a check-in day" in out and "Zero report" not in out
    assert (
        "No1 School: expected 0, reported 0 (—), missing 0, abnormal 0, excused 0, "
        "not enrolled 1," in out
    )
    # On Monday Eng/C2 is off, so the organisation expects only Eng/C1's three.
    _, out, _ = daka(capsys, "report", "no1")
    assert "No1 School: expected 3, reported 2 (67%), missing 1," in out


def test_check_ins_on_a_day_off_are_voluntary_in_the_report(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 16): Alice and Bob checked in on a day their class turns out to be
    off; they were counted as expected and reported (2 of 3, 67 %). Nobody of Eng/C1 is
    expected now: the report names their check-ins apart, and Bob's fever is still listed."""
    daka(capsys, "holiday", "add", "no1", "2026-11-30", "--unit", "Eng/C1")
    code, out, _ = daka(capsys, "report", "no1")
    assert code == 0
    lines = out.splitlines()
    assert lines[2] == (
        "No1 School: expected 1, reported 0 (0%), missing 1, abnormal 1, excused 0, "
        "not enrolled 1, unreachable 0, checked in on a day off 2"
    )
    assert "• Bob (Eng/C1): Temperature" in lines
    _, out, _ = daka(capsys, "report", "no1", "--unit", "Eng/C1")
    assert "Today is not a check-in day (holiday or day off)." in out
    assert "C1: expected 0, reported 0 (—), missing 0, abnormal 1," in out
    assert "Zero report" not in out


def test_an_empty_organisation_reports_zero_in_its_language(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "town", "--name", "东村")
    code, out, _ = daka(capsys, "report", "town", "--date", "2026-12-01")
    assert code == 0
    assert out.splitlines()[0] == "📊 2026-12-01 日报 — 东村 · 整个单位"
    assert "零报告：今日各项数字均为 0。" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no1", "--date", "30/11/2026"], "'30/11/2026' is not a date like 2026-11-28"),
        (["no1", "--date", "9999-12-31"], f"9999-12-31 {OUT_OF_RANGE}"),
        (["no1", "--date", "20261130"], "'20261130' is not a date like 2026-11-28"),
        (["no1", "--unit", "Eng/C9"], "no unit 'Eng/C9'"),
        (["nope"], "no organisation 'nope'"),
    ],
)
def test_a_bad_report_request_is_one_line(
    school: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert fails(capsys, "report", *args) == message


# --------------------------------------------------------------------------- remind
def reminded(server: FakeBotAPI) -> dict[int, int]:
    """Reminders per chat."""
    counts: dict[int, int] = {}
    for call in server.calls_of("sendMessage"):
        if call.ok and call.chat_id is not None and REMINDER in str(call.params.get("text")):
            counts[call.chat_id] = counts.get(call.chat_id, 0) + 1
    return counts


def test_remind_sends_a_round_now_to_who_is_missing(
    school: str, telegram: FakeBotAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = daka(capsys, "remind", "no1")
    assert code == 0, err
    assert out.strip() == (
        "no1 2026-11-30 manual@09:00:00: due 2, sent 2, skipped 0, failed 0, unreachable 0"
    )
    # Carol and Dan; not Alice and Bob (checked in), nor Eve (not enrolled).
    assert reminded(telegram) == {TELEGRAM["1003"]: 1, TELEGRAM["2001"]: 1}
    assert telegram.last_message(TELEGRAM["1003"]).buttons == [["✅ Check in now"]]
    # A manual round without --slot may run again a second later (its own slot).
    code, out, _ = daka(capsys, "remind", "no1", "--unit", "Eng/C2", at=NINE.replace(second=1))
    assert code == 0
    assert out.strip() == (
        "no1 2026-11-30 manual@09:00:01: due 1, sent 1, skipped 0, failed 0, unreachable 0"
    )
    assert reminded(telegram) == {TELEGRAM["1003"]: 1, TELEGRAM["2001"]: 2}


def test_remind_counts_as_a_slot_once_and_reports_the_unreachable(
    school: str, telegram: FakeBotAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    telegram.block(TELEGRAM["2001"])
    code, out, err = daka(capsys, "remind", "no1", "--slot", "10:00")
    assert code == 0, err
    assert out.strip() == (
        "no1 2026-11-30 remind@10:00: due 2, sent 1, skipped 0, failed 0, unreachable 1"
    )
    assert reminded(telegram) == {TELEGRAM["1003"]: 1}
    calls = len(telegram.calls)
    assert fails(capsys, "remind", "no1", "--slot", "10:00") == (
        "the remind@10:00 round of 2026-11-30 has already run"
    )
    assert len(telegram.calls) == calls, "a refused round sent something"
    # The scheduler's own 10:00 round is the same slot: it will not run either.
    [run] = asyncio.run(rows(school, SlotRun))
    assert (run.scope, run.day, run.slot) == ("org", MONDAY, "remind@10:00")
    # Dan blocked the bot: the next round leaves him out.
    code, out, _ = daka(capsys, "remind", "no1", "--slot", "12:00")
    assert out.strip() == (
        "no1 2026-11-30 remind@12:00: due 1, sent 1, skipped 0, failed 0, unreachable 0"
    )
    assert reminded(telegram) == {TELEGRAM["1003"]: 2}
    letters = asyncio.run(rows(school, Outbox))
    assert sorted((x.slot, int(x.address), x.status) for x in letters) == [
        ("remind@10:00", TELEGRAM["1003"], "sent"),
        ("remind@10:00", TELEGRAM["2001"], "blocked"),
        ("remind@12:00", TELEGRAM["1003"], "sent"),
    ]


def test_remind_mistakes_are_one_line(
    school: str, env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9")  # nothing is sent
    assert fails(capsys, "remind", "no1", "--slot", "25:00") == "'25:00' is not a time like 08:00"
    assert fails(capsys, "remind", "no1", "--unit", "Eng/C9") == "no unit 'Eng/C9'"
    assert fails(capsys, "remind", "nope") == "no organisation 'nope'"
    assert asyncio.run(rows(school, SlotRun)) == []
    monkeypatch.delenv("BOT_TOKEN")
    code, _, err = daka(capsys, "remind", "no1")  # says which settings it needs
    assert code == 2 and err.strip().startswith("daka: no channel to send reminders on: set ")
    assert asyncio.run(rows(school, SlotRun)) == []


async def bind_on_wecom(url: str, member_id: str, userid: str) -> None:
    """The enrolled member `member_id` also has the WeCom identity `userid`."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="no1")
            member = await repo.members.by_external(org_id=org.id or 0, external_id=member_id)
            assert member is not None and member.account_id is not None
            session.add(
                Identity(
                    channel="wecom",
                    external_id=userid,
                    account_id=member.account_id,
                    created_at=NINE,
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


def test_remind_reaches_members_on_telegram_and_on_wecom(
    school: str,
    telegram: FakeBotAPI,
    wecom_env: LocalWeCom,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A deployment with both channels: a member bound on both gets the reminder on each, a
    member bound on WeCom alone gets it there, from the one round."""
    wecom_env.add_members("carol", "dan")
    asyncio.run(bind_on_wecom(school, "1003", "carol"))
    code, out, err = daka(capsys, "remind", "no1")
    assert code == 0, err
    assert out.strip() == (
        "no1 2026-11-30 manual@09:00:00: due 3, sent 3, skipped 0, failed 0, unreachable 0"
    )
    assert reminded(telegram) == {TELEGRAM["1003"]: 1, TELEGRAM["2001"]: 1}
    [letter] = wecom_env.inbox("carol")
    assert letter.msgtype == "template_card" and REMINDER in str(letter.body)
    assert wecom_env.inbox("dan") == []  # Dan is on Telegram only


@pytest.mark.parametrize("callback", ["set", "unset"])
def test_remind_in_a_wecom_only_deployment_goes_through_wecom(
    school: str,
    wecom_env: LocalWeCom,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    callback: str,
) -> None:
    """No BOT_TOKEN, the WECOM_* settings: the round is sent through the WeCom app, to the
    members bound there; those on Telegram alone are not due on this deployment. Sending
    needs no callback Token nor EncodingAESKey."""
    if callback == "unset":
        monkeypatch.delenv("WECOM_TOKEN")
        monkeypatch.delenv("WECOM_AES_KEY")
    wecom_env.add_members("carol", "dan")
    asyncio.run(bind_on_wecom(school, "1003", "carol"))
    code, out, err = daka(capsys, "remind", "no1")
    assert code == 0, err
    assert out.strip() == (
        "no1 2026-11-30 manual@09:00:00: due 1, sent 1, skipped 0, failed 0, unreachable 0"
    )
    [letter] = wecom_env.inbox("carol")
    assert letter.msgtype == "template_card" and REMINDER in str(letter.body)
    assert wecom_env.inbox("dan") == []
    [sent] = [x for x in asyncio.run(rows(school, Outbox)) if x.status == "sent"]
    assert (sent.channel, sent.address) == ("wecom", "carol")
