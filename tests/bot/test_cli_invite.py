"""`daka invite`: create, list and revoke invite links, codes that begin with "-" included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from domain.clock import FixedClock
from storage.db import create_engine, create_session_factory
from storage.models import Invite
from storage.repo import Repo

# Monday 2026-11-30, 09:00 in Shanghai.
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
DASHED = "-KMNcs7UuQeohuPy"


def daka(
    capsys: pytest.CaptureFixture[str], *args: str, at: datetime = NOW
) -> tuple[int, str, str]:
    code = main(list(args), clock=FixedClock(at))
    out, err = capsys.readouterr()
    return code, out, err


def invite_code(out: str) -> str:
    return out.strip().splitlines()[-1].split("?start=", 1)[1]


async def add_invite_made_before_the_fix(env: Path, code: str) -> None:
    """An invite whose code begins with "-", as codes could before they were made never to."""
    engine = create_engine(f"sqlite+aiosqlite:///{env / 'daka.db'}")
    try:
        async with create_session_factory(engine)() as session:
            org = await Repo(session).orgs.require(slug="no1")
            session.add(
                Invite(
                    code=code,
                    org_id=org.id or 0,
                    expires_at=NOW + timedelta(days=7),
                    created_at=NOW - timedelta(days=1),
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


@pytest.fixture
def no1(env: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert daka(capsys, "org", "create", "no1", "--name", "No1")[0] == 0
    assert daka(capsys, "unit", "add", "no1", "Eng/C1")[0] == 0
    return env


def test_an_invite_expires_at_a_time_with_the_organisations_zone(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "invite", "no1", "--expires", "3")
    assert code == 0
    assert out.splitlines()[0] == (
        "member invite for no1 (whole organisation), unlimited uses, "
        "expires 2026-12-03 09:00 Asia/Shanghai"
    )
    assert not invite_code(out).startswith("-")


def test_invites_are_listed_with_what_is_left_of_them(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "invite", "list", "no1")
    assert (code, out) == (0, "no invites in no1\n")
    _, out, _ = daka(capsys, "invite", "create", "no1", "--unit", "Eng/C1", "--uses", "2")
    class_invite = invite_code(out)
    _, out, _ = daka(
        capsys, "invite", "no1", "--role", "manager", "--uses", "1", "--expires", "1",
        at=NOW + timedelta(minutes=1),
    )  # fmt: skip
    manager_invite = invite_code(out)
    assert daka(capsys, "invite", "revoke", manager_invite)[0] == 0
    later = NOW + timedelta(hours=2)
    code, out, _ = daka(capsys, "invite", "list", "no1", at=later)
    assert code == 0
    assert out.splitlines() == [
        "code\trole\tunit\tuses left\texpires\tstatus",
        f"{class_invite}\tmember\tEng/C1\t2\t2026-12-07 09:00 Asia/Shanghai\tusable",
        f"{manager_invite}\tmanager\twhole organisation\t1\t2026-12-01 09:01 Asia/Shanghai\t"
        "revoked 2026-11-30 09:00 Asia/Shanghai",
        "2 invite(s), 1 usable",
    ]
    _, out, _ = daka(capsys, "invite", "list", "no1", at=NOW + timedelta(days=8))
    assert out.splitlines()[1].endswith("\texpired")


def test_a_code_that_begins_with_a_dash_is_revoked_as_written(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(add_invite_made_before_the_fix(no1, DASHED))
    code, out, err = daka(capsys, "invite", "revoke", DASHED)
    assert (code, out, err) == (0, f"revoked invite {DASHED}\n", "")
    _, out, _ = daka(capsys, "invite", "list", "no1")
    assert out.splitlines()[1].startswith(f"{DASHED}\tmember\twhole organisation\tunlimited\t")
    assert "\trevoked 2026-11-30 09:00" in out
    code, out, err = daka(capsys, "invite", "revoke", "--", DASHED)  # the argparse way still works
    assert (code, out) == (0, f"revoked invite {DASHED}\n")


def test_invite_mistakes_are_one_line(no1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = daka(capsys, "invite", "list", "nope")
    assert code == 1 and err == "daka: no organisation 'nope'\n"
    code, _, err = daka(capsys, "invite", "revoke", "-nosuchcodeatall0")
    assert code == 1 and err == "daka: no invite '-nosuchcodeatall0'\n"
    code, _, err = daka(capsys, "invite", "no1", "--expires", "0")
    assert code == 1 and err == "daka: --expires must be from 1 to 366 days\n"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--expires", "100000000"], "--expires must be from 1 to 366 days"),
        (["--expires", "367"], "--expires must be from 1 to 366 days"),
        (["--uses", "0"], "--uses must be from 1 to 1000000"),
        (["--uses", "99999999999"], "--uses must be from 1 to 1000000"),
    ],
)
def test_an_invite_beyond_what_can_be_kept_is_one_line_and_none_is_made(
    no1: Path, capsys: pytest.CaptureFixture[str], args: list[str], line: str
) -> None:
    """Regression: `--expires 100000000` failed with "failed: OverflowError"."""
    code, out, err = daka(capsys, "invite", "no1", *args)
    assert (code, out, err) == (1, "", f"daka: {line}\n")
    assert daka(capsys, "invite", "list", "no1")[1] == "no invites in no1\n"


def test_an_invite_valid_for_a_year_is_made(no1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = daka(capsys, "invite", "no1", "--expires", "366", "--uses", "1000000")
    assert code == 0
    assert out.splitlines()[0] == (
        "member invite for no1 (whole organisation), 1000000 use(s), "
        "expires 2027-12-01 09:00 Asia/Shanghai"
    )
