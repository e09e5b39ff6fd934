"""Roles and the audit trail from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from domain.clock import FixedClock
from tests.bot.test_cli import daka


def test_roles_are_granted_listed_revoked_and_audited(
    env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    daka(capsys, "unit", "add", "no1", "工程学院/一班")
    code, out, _ = daka(capsys, "role", "list", "no1")
    assert (code, out) == (0, "no managers or administrators in no1\n")
    code, _, err = daka(capsys, "role", "grant", "no1", "555")
    assert code == 1 and "--unit" in err
    code, out, _ = daka(capsys, "role", "grant", "no1", "555", "--unit", "工程学院/一班")
    assert code == 0 and "manager of 工程学院/一班" in out
    code, out, _ = daka(capsys, "role", "grant", "no1", "777", "--role", "admin")
    assert code == 0 and "admin of whole organisation" in out
    _, out, _ = daka(capsys, "role", "list", "no1")
    assert out.splitlines() == ["555\tmanager\t工程学院/一班", "777\tadmin\twhole organisation"]
    code, out, _ = daka(capsys, "role", "revoke", "no1", "555")
    assert code == 0 and "revoked 1" in out
    code, _, err = daka(capsys, "role", "revoke", "no1", "555")
    assert code == 1 and "no such role" in err
    _, out, _ = daka(capsys, "audit", "no1")
    actions = [line.split("\t")[2] for line in out.splitlines()[:-1]]
    assert actions == ["role.grant.manager", "role.grant.admin", "role.revoke.manager"]
    assert out.splitlines()[-1].startswith("3 entries since")
    code, _, err = daka(capsys, "audit", "no1", "--since", "yesterday")
    assert code == 1 and "not a date" in err


@pytest.mark.parametrize("telegram_id", ["999999999999999999999", "4503599627370496", "0", "-5"])
@pytest.mark.parametrize("action", ["grant", "revoke"])
def test_a_telegram_id_no_user_can_have_is_one_line_and_grants_nothing(
    env: Path, capsys: pytest.CaptureFixture[str], action: str, telegram_id: str
) -> None:
    """Regression: an id beyond 64 bits failed inside the database ("failed: OverflowError")."""
    daka(capsys, "org", "create", "no1", "--name", "No1")
    admin = ["--role", "admin"] if action == "grant" else []
    code, out, err = daka(capsys, "role", action, "no1", telegram_id, *admin)
    assert (code, out, err) == (
        1,
        "",
        "daka: telegram_id must be from 1 to 4503599627370495 (a Telegram user id)\n",
    )
    assert daka(capsys, "role", "list", "no1")[1] == "no managers or administrators in no1\n"


def test_the_largest_telegram_id_is_granted(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, out, _ = daka(capsys, "role", "grant", "no1", "4503599627370495", "--role", "admin")
    assert (code, out) == (0, "4503599627370495 is now admin of whole organisation in no1\n")


def test_an_audit_since_a_day_beyond_the_window_is_one_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `--since 0001-01-01` failed with "failed: OverflowError"."""
    at = FixedClock(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    main(["org", "create", "no1", "--name", "No1"], clock=at)
    code = main(["audit", "no1", "--since", "0001-01-01"], clock=at)
    out, err = capsys.readouterr()
    assert (code, err) == (
        1,
        "daka: 0001-01-01 is out of range: give a day from 2016-11-22 to 2027-12-01\n",
    )
    code = main(["audit", "no1", "--since", "2016-11-22"], clock=at)
    out, err = capsys.readouterr()
    assert (code, out) == (0, "0 entries since 2016-11-22 00:00\n")


def test_retention_from_the_command_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, out, _ = daka(capsys, "retention", "--dry-run")
    assert code == 0 and out == ""


def test_export_writes_the_contract_file(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import csv

    daka(capsys, "org", "create", "no1", "--name", "No1")
    (env / "r.csv").write_text("unit,member_id,name\nA/1,001,张三\nA/2,002,李四\n", "utf-8")
    daka(capsys, "roster", "import", "no1", str(env / "r.csv"))
    code, out, _ = daka(
        capsys,
        "export",
        "no1",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--unit",
        "A/1",
        "--format",
        "csv",
        "--output",
        str(env / "out.csv"),
    )
    assert code == 0 and "wrote 2 rows" in out
    rows = list(csv.reader((env / "out.csv").read_text("utf-8-sig").splitlines()))
    assert rows[0][:5] == ["date", "unit_path", "member_id", "name", "status"]
    assert [(r[0], r[2], r[4]) for r in rows[1:]] == [
        ("2026-11-01", "001", "not_enrolled"),
        ("2026-11-02", "001", "not_enrolled"),
    ]
    code, _, err = daka(capsys, "export", "no1", "--output", str(env / "x.xlsx"))
    assert code == 1 and "--date" in err
    code, out, _ = daka(
        capsys, "export", "no1", "--date", "2026-11-01", "--output", str(env / "x.xlsx")
    )
    assert code == 0 and (env / "x.xlsx").read_bytes()[:2] == b"PK"
