"""The `daka` command line as an admin scripts it: one line per problem, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def daka(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def test_setting_up_a_school_from_the_command_line(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = daka(capsys, "org", "create", "no1", "--name", "第一中学")
    assert code == 0 and "no1" in out and "Asia/Shanghai" in out
    code, out, _ = daka(capsys, "unit", "add", "no1", "工程学院/一班")
    assert code == 0 and "工程学院/一班" in out
    roster = write_csv(
        env / "roster.csv",
        "unit,member_id,name\n工程学院/一班,2024001,张三\n工程学院/二班,2024002,李四\n",
        bom=True,
    )
    code, out, _ = daka(capsys, "roster", "import", "no1", str(roster))
    assert code == 0 and "2 added" in out
    again = write_csv(env / "again.csv", "unit,member_id,name\n工程学院/一班,2024002,李四\n")
    code, out, _ = daka(capsys, "roster", "import", "no1", str(again))
    assert code == 0 and "0 added, 1 updated" in out
    code, out, _ = daka(capsys, "member", "list", "no1")
    assert "工程学院/一班\t2024001\t张三\tnot enrolled" in out
    assert "2 members, 0 enrolled" in out
    code, out, _ = daka(capsys, "member", "list", "no1", "--unit", "工程学院/一班")
    assert "2024002" in out and "2 members" in out
    code, out, _ = daka(capsys, "unit", "list", "no1")
    assert out.splitlines() == ["工程学院", "  一班", "  二班"]


def test_an_xlsx_roster_is_read_like_a_csv(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    daka(capsys, "org", "create", "town", "--name", "Town", "--form", "location")
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "unit", "member_id"])
    sheet.append(["王五", "东村/一组", 1001])
    sheet.append(["赵六", "东村/二组", 1002])
    book.save(env / "roster.xlsx")
    code, out, _ = daka(capsys, "roster", "import", "town", str(env / "roster.xlsx"))
    assert code == 0 and "2 added" in out
    _, out, _ = daka(capsys, "member", "list", "town")
    assert "东村/一组\t1001\t王五" in out


def test_a_broken_roster_names_its_lines_and_imports_nothing(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    bad = write_csv(
        env / "bad.csv",
        "unit,member_id,name\nA/1,001,张三\nA/1,,李四\nA//2,003,王五\nA/1,001,重复\n",
    )
    code, out, err = daka(capsys, "roster", "import", "no1", str(bad))
    assert code == 1
    assert "bad.csv:3: member_id is empty" in err
    assert "bad.csv:4: unit" in err
    assert "bad.csv:5: member_id 001 already appears on line 2" in err
    assert "nothing was imported" in err
    _, out, _ = daka(capsys, "member", "list", "no1")
    assert "0 members" in out


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"id,who\n1,2\n", "r.csv", "missing: unit, name"),
        (b"\xff\xfe\x00\x00", "r.csv", "not UTF-8"),
        (b"not a zip", "r.xlsx", "not a readable .xlsx"),
        (b"unit,member_id,name\n", "r.txt", "must be a .csv or .xlsx"),
    ],
)
def test_unreadable_roster_files_get_one_clear_line(
    env: Path, capsys: pytest.CaptureFixture[str], content: bytes, name: str, message: str
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    (env / name).write_bytes(content)
    code, _, err = daka(capsys, "roster", "import", "no1", str(env / name))
    assert code == 1 and message in err and "Traceback" not in err


def test_invites_print_the_link_last_and_can_be_revoked(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    daka(capsys, "unit", "add", "no1", "Eng/C1")
    code, out, _ = daka(
        capsys,
        "invite",
        "no1",
        "--unit",
        "Eng/C1",
        "--role",
        "manager",
        "--expires",
        "3",
        "--uses",
        "1",
    )
    assert code == 0
    link = out.strip().splitlines()[-1]
    assert link.startswith("https://t.me/daka_test_bot?start=")
    code_part = link.split("=", 1)[1]
    assert len(code_part) >= 16
    code, out, _ = daka(capsys, "invite", "revoke", code_part)
    assert code == 0 and "revoked" in out
    code, _, err = daka(capsys, "invite", "revoke", "nope-nope-nope-nope")
    assert code == 1 and "no invite" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["org", "create", "Bad Slug", "--name", "x"], "slug"),
        (["org", "create", "ok", "--name", "x", "--timezone", "Mars/Base"], "unknown time zone"),
        (["org", "create", "ok", "--name", "x", "--form", "nope"], "unknown form"),
        (["unit", "add", "missing", "A"], "no organisation 'missing'"),
        (["invite", "missing"], "no organisation 'missing'"),
        (["org", "set", "missing", "--retain-days", "3"], "no organisation"),
    ],
)
def test_mistakes_are_one_line_and_exit_1(
    env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = daka(capsys, *args)
    assert code == 1
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("days", ["0", "91", "100000000"])
def test_a_retention_beyond_the_form_bound_is_one_line(
    env: Path, capsys: pytest.CaptureFixture[str], days: str
) -> None:
    """The health form keeps no answer longer than 90 days (its `max_retain_days`)."""
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, out, err = daka(capsys, "org", "set", "no1", "--retain-days", days)
    assert (code, out, err) == (
        1,
        "",
        "daka: --retain-days must be from 1 to 90 days (form health's bound)\n",
    )
    code, out, _ = daka(capsys, "org", "set", "no1", "--retain-days", "90")
    assert code == 0 and out.endswith(", retain 90 days, erase 7 days after a withdrawal\n")


def test_geofence_and_retention_are_set_per_organisation(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, out, _ = daka(
        capsys, "org", "set", "no1", "--geofence", "39.99,116.31,2000", "--retain-days", "14"
    )
    assert code == 0 and "geofence 39.99,116.31 r=2000 m" in out and "retain 14 days" in out
    code, _, err = daka(capsys, "org", "set", "no1", "--geofence", "north")
    assert code == 1 and "LAT,LON,RADIUS_M" in err


def run_daka(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=env["HOME"],
        timeout=60,
        check=False,
    )


def test_bad_settings_exit_2_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_"))}
    base["HOME"] = str(tmp_path)
    base["PYTHONPATH"] = str(ROOT)
    result = run_daka("run", env={**base, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db"})
    assert result.returncode == 2
    assert result.stderr.strip().startswith("daka: nothing to run: set BOT_TOKEN for Telegram")
    result = run_daka("org", "list", env={**base, "ADMIN_IDS": "12,abc"})
    assert result.returncode == 2 and "ADMIN_IDS" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_daka("org", "list", env={**base, "DATABASE_URL": "mysql://x"})
    assert result.returncode == 2 and "DATABASE_URL" in result.stderr
    result = run_daka("org", "list", env={**base, "EVENT_LOOP": "tokio"})
    assert result.returncode == 2 and "EVENT_LOOP" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_webhook_mode_needs_its_secret_and_a_public_url(tmp_path: Path) -> None:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BOT_", "DATABASE_", "WEBHOOK_", "LOG_"))
    }
    base.update(
        HOME=str(tmp_path),
        PYTHONPATH=str(ROOT),
        BOT_TOKEN="42:TEST",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/d.db",
    )
    result = run_daka("webhook", "--url", "https://daka.example.org", env=base)
    assert result.returncode == 2
    assert result.stderr.strip() == "daka: setting WEBHOOK_SECRET is required for webhook mode"
    result = run_daka("webhook", env={**base, "WEBHOOK_SECRET": "has spaces"})
    assert result.returncode == 2 and "WEBHOOK_SECRET" in result.stderr
    result = run_daka("webhook", env={**base, "WEBHOOK_SECRET": "s3cret"})
    assert result.returncode == 1
    assert "--url is required unless --no-set-webhook" in result.stderr
    result = run_daka("org", "list", env={**base, "LOG_FORMAT": "xml"})
    assert result.returncode == 2 and "LOG_FORMAT" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_webhook_path_that_disagrees_with_the_url_is_refused(tmp_path: Path) -> None:
    """Regression: `--url https://bot.example.org/hook` with WEBHOOK_PATH=/telegram registered
    /hook and served /telegram, so Telegram got 404 for every update; now it does not start."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_", "WEB"))},
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": "42:TEST",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/d.db",
        "WEBHOOK_SECRET": "s3cret",
        "WEBHOOK_PATH": "/telegram",
    }
    for extra in ([], ["--no-set-webhook"]):
        result = run_daka("webhook", "--url", "https://bot.example.org/hook", *extra, env=env)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            "daka: setting WEBHOOK_PATH is /telegram but --url https://bot.example.org/hook "
            "delivers to /hook: leave WEBHOOK_PATH unset or make the two agree"
        ]
    assert not (tmp_path / "d.db").exists(), "it got as far as the database"


def test_help_lists_every_command(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = run_daka("--help", env=env)
    assert result.returncode == 0
    for command in ("run", "webhook", "scheduler", "db", "org", "unit", "roster", "invite"):
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["invite", "create"], ["--role", "(default: member)", "--expires", "(default: 7)"]),
        (["invite", "create"], ["--uses", "(default: any)"]),
        (["org", "create"], ["(default: Asia/Shanghai)", "(default: zh)", "(default: health)"]),
        (["org", "set"], ["--retain-days", "(new organisations: 30)"]),
        (["export"], ["--format", "default: the --output file's extension (.xlsx or .csv)"]),
        (["excuse", "add"], ["the member's id in the roster", "first day", "last day"]),
        (["excuse", "add"], ["--reason", "e.g. sick leave"]),
        (["webhook"], ["(default: 0.0.0.0)", "(default: 8080)"]),
    ],
)
def test_help_says_what_an_option_is_when_left_out(
    capsys: pytest.CaptureFixture[str], command: list[str], shown: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    for part in shown:
        assert part in text
    assert "(default: None)" not in text and "(default: False)" not in text
