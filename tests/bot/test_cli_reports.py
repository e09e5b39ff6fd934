"""`daka export`: the file's extension says the format, or --format for a name that says none;
a contradicting --format is refused."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from domain.clock import FixedClock
from tests.bot.test_cli import daka


@pytest.fixture
def no1(env: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    (env / "r.csv").write_text("unit,member_id,name\nA/1,001,张三\n", "utf-8")
    daka(capsys, "roster", "import", "no1", str(env / "r.csv"))
    return env


def test_the_extension_chooses_the_format(no1: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = daka(capsys, "export", "no1", "--date", "2026-11-01", "--output", "z.csv")
    assert (code, out) == (0, "wrote 1 rows (2026-11-01 to 2026-11-01) to z.csv\n")
    rows = list(csv.reader((no1 / "z.csv").read_text("utf-8-sig").splitlines()))
    assert rows[1][:5] == ["2026-11-01", "A/1", "001", "张三", "not_enrolled"]
    code, _, _ = daka(capsys, "export", "no1", "--date", "2026-11-01", "--output", "Z.XLSX")
    assert code == 0 and (no1 / "Z.XLSX").read_bytes()[:2] == b"PK"
    # No extension to go by: --format says.
    daka(capsys, "export", "no1", "--date", "2026-11-01", "--output", "plain", "--format", "csv")
    assert (no1 / "plain").read_text("utf-8-sig").startswith("date,unit_path,")
    daka(capsys, "export", "no1", "--date", "2026-11-01", "--output", "x.txt", "--format", "xlsx")
    assert (no1 / "x.txt").read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("name", ["x.txt", "book", "x.xls"])
def test_a_file_name_that_says_no_format_needs_format(
    no1: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Regression: `--output x.txt` silently wrote XLSX."""
    code, out, err = daka(capsys, "export", "no1", "--date", "2026-11-01", "--output", name)
    assert (code, out, err) == (
        1,
        "",
        f"daka: cannot tell the format of {name}: name it .xlsx or .csv, or give --format\n",
    )
    assert not (no1 / name).exists()


def test_an_export_of_days_beyond_the_window_is_one_line(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["export", "no1", "--from", "0001-01-01", "--to", "2026-11-01", "--output", "z.csv"],
        clock=FixedClock(datetime(2026, 11, 30, 1, 0, tzinfo=UTC)),
    )
    out, err = capsys.readouterr()
    assert (code, out, err) == (
        1,
        "",
        "daka: 0001-01-01 is out of range: give a day from 2016-11-22 to 2027-12-01\n",
    )
    assert not (no1 / "z.csv").exists()


def test_a_format_that_contradicts_the_extension_is_refused(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = daka(
        capsys, "export", "no1", "--date", "2026-11-01", "--output", "z.csv", "--format", "xlsx"
    )
    assert (code, out, err) == (
        1,
        "",
        "daka: --format xlsx does not match the output file z.csv\n",
    )
    assert not (no1 / "z.csv").exists()
