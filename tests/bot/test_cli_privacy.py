"""`daka mydata`, `erase`, `hold` and `org set --withdrawal-grace-days` as an administrator
answering a written request types them: the file, the erasure (only with --yes, never under a
hold), every step audited, one line with exit 1 for every mistake."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey

from handlers.telegram.fsm import redis_storage
from storage.models import AuditEntry, CheckIn, Member
from tests.bot.test_cli_schedule import (
    NINE,
    ROSTER,
    TELEGRAM,
    daka,
    enrol_and_check_in,
    fails,
    rows,
)
from tests.bot.test_fsm import closed_redis


@pytest.fixture
def school(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sqlite_template: Path,
) -> str:
    """The school of tests/bot/test_cli_schedule.py: no1 (English), Alice and Bob (a fever)
    checked in on Monday, Eve never enrolled. Its database URL (a copy of the run's migrated
    template)."""
    shutil.copyfile(sqlite_template, tmp_path / "daka.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("BOT_USERNAME", "daka_test_bot")
    for name in ("BOT_TOKEN", "TELEGRAM_API_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    assert daka(capsys, "org", "create", "no1", "--name", "No1 School", "--language", "en")[0] == 0
    (tmp_path / "roster.csv").write_text(ROSTER, encoding="utf-8")
    assert daka(capsys, "roster", "import", "no1", str(tmp_path / "roster.csv"))[0] == 0
    asyncio.run(enrol_and_check_in(url))
    return url


def test_mydata_writes_everything_stored_about_a_member(
    school: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = daka(capsys, "mydata", "no1", "1002", "--output", "bob.json")
    assert (code, err) == (0, "")
    assert out == "wrote everything stored about 1002 (Bob) to bob.json\n"
    data = json.loads((tmp_path / "bob.json").read_text("utf-8"))
    [enrolment] = data["enrolments"]
    assert (enrolment["member_id"], enrolment["unit"]) == ("1002", "Eng/C1")
    [checkin] = data["check_ins"]
    assert checkin["answers"] == {"temperature": 38.4} and len(checkin["revisions"]) == 1
    assert [i["id"] for i in data["identities"]] == ["11002"]
    code, out, _ = daka(capsys, "mydata", "no1", "1002")  # to standard output
    assert code == 0 and json.loads(out)["enrolments"] == data["enrolments"]
    audit = asyncio.run(rows(school, AuditEntry))
    assert [(a.actor, a.action, a.subject, a.detail) for a in audit] == [
        ("cli", "mydata", "1002", "written request, to bob.json"),
        ("cli", "mydata", "1002", "written request"),
    ]
    # The second file shows the first request in its access log.
    assert [e["action"] for e in json.loads(out)["access_log"]] == ["mydata"]


def test_erasing_needs_yes_keeps_the_figures_and_withdraws_consent(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report = daka(capsys, "report", "no1", "--date", "2026-11-30")[1].splitlines()
    assert report[-1] == "• Bob (Eng/C1): Temperature"
    message = fails(capsys, "erase", "no1", "1002")
    assert message == "erasing 1002 (Bob) cannot be undone: run again with --yes"
    assert asyncio.run(rows(school, CheckIn))[1].answers == {"temperature": 38.4}

    code, out, _ = daka(capsys, "erase", "no1", "1002", "--yes")
    assert code == 0
    assert out == (
        "erased 1002 (Bob): answers of 1 check-in(s) and 1 version(s), 0 excuse reason(s), "
        "0 letter(s); consent withdrawn\n"
    )
    bob = next(c for c in asyncio.run(rows(school, CheckIn)) if c.answers == {})
    assert bob.abnormal  # the day's status stays
    after = daka(capsys, "report", "no1", "--date", "2026-11-30")[1].splitlines()
    assert after[:-1] == report[:-1]  # the figures, every unit's
    assert after[-1] == "• Bob (Eng/C1)"  # still abnormal that day; the answers are gone
    members = {m.external_id: m for m in asyncio.run(rows(school, Member))}
    assert members["1002"].withdrawn_at is not None and members["1002"].erased_at is not None
    actions = [(a.action, a.subject) for a in asyncio.run(rows(school, AuditEntry))]
    assert actions == [("consent.withdraw", "1002"), ("member.erase", "1002")]
    code, out, _ = daka(capsys, "member", "list", "no1", "--unit", "Eng/C1")
    assert "Eng/C1\t1002\tBob\twithdrew consent 2026-11-30" in out


def test_a_legal_hold_is_set_refuses_erasure_and_is_cleared(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "hold", "set", "no1", "1001", "--reason", "  court  order 17 ")
    assert (code, out) == (0, "legal hold on 1001 (Alice): court order 17\n")
    message = fails(capsys, "erase", "no1", "1001", "--yes")
    assert message == (
        "1001 is under a legal hold (court order 17): clear it first with "
        "`daka hold clear no1 1001 --reason ...`"
    )
    code, out, _ = daka(capsys, "hold", "clear", "no1", "1001", "--reason", "case closed")
    assert (code, out) == (0, "legal hold on 1001 (Alice) cleared\n")
    assert fails(capsys, "hold", "clear", "no1", "1001", "--reason", "again") == (
        "1001 is not under a legal hold"
    )
    assert daka(capsys, "erase", "no1", "1001", "--yes")[0] == 0
    audit = asyncio.run(rows(school, AuditEntry))
    assert [(a.action, a.detail) for a in audit][:2] == [
        ("hold.set", "court order 17"),
        ("hold.clear", "case closed"),
    ]


def test_a_hold_on_a_member_who_withdrew_says_when_the_answers_go(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "hold", "set", "no1", "1001", "--reason", "audit")
    asyncio.run(withdraw(school, "1001"))
    code, out, _ = daka(capsys, "hold", "clear", "no1", "1001", "--reason", "done")
    assert code == 0 and out == (
        "legal hold on 1001 (Alice) cleared; its answers are erased once due "
        "(2026-12-07 09:00 Asia/Shanghai)\n"
    )
    # `daka retention` erases withdrawn members past their grace period (as the scheduler).
    later = NINE + timedelta(days=7)
    code, out, _ = daka(capsys, "retention", "--dry-run", at=later)
    assert code == 0 and "no1: would erase the answers of 1001 (withdrew consent)" in out
    code, out, _ = daka(capsys, "retention", at=later)
    assert code == 0 and "no1: erased the answers of 1001 (withdrew consent)" in out
    assert next(m for m in asyncio.run(rows(school, Member)) if m.external_id == "1001").erased_at


async def withdraw(url: str, external_id: str) -> None:
    from storage.db import create_engine, create_session_factory
    from storage.repo import Repo

    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="no1")
            member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
            assert member is not None
            await repo.privacy.withdraw(member=member, org=org, actor="x", now=NINE)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mydata", "no1", "9999"], "no member '9999' in no1"),
        (["mydata", "nope", "1001"], "no organisation 'nope'"),
        (["erase", "no1", "9999", "--yes"], "no member '9999' in no1"),
        (["hold", "set", "no1", "1001", "--reason", "   "], "--reason is empty: say why"),
        (
            ["hold", "set", "no1", "1001", "--reason", "x" * 201],
            "--reason is too long: at most 200 characters",
        ),
        (["hold", "clear", "no1", "9999", "--reason", "x"], "no member '9999' in no1"),
        (
            ["mydata", "no1", "1001", "--output", "missing/dir/x.json"],
            "cannot write missing/dir/x.json: No such file or directory",
        ),
        (
            ["org", "set", "no1", "--withdrawal-grace-days", "-1"],
            "--withdrawal-grace-days must be from 0 to 366",
        ),
        (
            ["org", "set", "no1", "--retain-days", "91"],
            "--retain-days must be from 1 to 90 days (form health's bound)",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_1(
    school: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert fails(capsys, *args) == message
    assert asyncio.run(rows(school, AuditEntry)) == []


def test_a_hold_needs_a_reason(school: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        daka(capsys, "hold", "set", "no1", "1001")
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "--reason" in err and "Traceback" not in err


def test_the_grace_period_is_set_per_organisation(
    school: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "org", "set", "no1", "--withdrawal-grace-days", "0")
    assert code == 0 and out.endswith(", retain 30 days, erase 0 days after a withdrawal\n")
    code, out, _ = daka(capsys, "org", "set", "no1", "--retain-days", "90")
    assert code == 0 and ", retain 90 days," in out


async def redis_drafts(url: str, *chats: int, start: bool = False) -> list[str | None]:
    """Each chat's state in Redis, as the bot keeps it (with `start`: a draft begun first)."""
    storage = redis_storage(url)
    try:
        states = []
        for chat in chats:
            key = StorageKey(bot_id=42, chat_id=chat, user_id=chat)
            if start:
                await storage.set_state(key, "CheckInForm:answering")
                await storage.set_data(key, {"draft": {"temperature": 38.4}})
            states.append(await storage.get_state(key))
        return states
    finally:
        await storage.close()


def test_erasing_on_request_clears_the_telegram_state_kept_in_redis(
    school: str,
    redis_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With REDIS_URL (replicas), Bob's draft under way is in Redis: `daka erase` deletes it
    there too, and no one else's. Redis out of reach: one line, and nothing is erased."""
    bob, carol = TELEGRAM["1002"], TELEGRAM["1003"]
    asyncio.run(redis_drafts(redis_url, bob, carol, start=True))
    monkeypatch.setenv("REDIS_URL", closed_redis())
    message = fails(capsys, "erase", "no1", "1002", "--yes")
    assert message.startswith("Redis at REDIS_URL cannot be reached (")
    assert message.endswith("); nothing was erased: try again")
    members = {m.external_id: m for m in asyncio.run(rows(school, Member))}
    assert members["1002"].erased_at is None and members["1002"].withdrawn_at is None

    monkeypatch.setenv("REDIS_URL", redis_url)
    assert daka(capsys, "erase", "no1", "1002", "--yes")[0] == 0
    assert asyncio.run(redis_drafts(redis_url, bob, carol)) == [None, "CheckInForm:answering"]
