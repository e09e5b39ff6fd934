"""`daka export`: the file's extension says the format, or --format for a name that says none;
a contradicting --format is refused; the .xlsx speaks the organisation's language unless --raw."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

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


def test_the_xlsx_speaks_the_organisations_language_and_raw_keeps_the_contract(
    no1: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """People get a workbook in the organisation's language with dates as dates; `--raw` gives
    scripts the machine contract's headers and codes in the same typed cells; the CSV is that
    contract whatever the language and with or without `--raw`."""
    day = ("--date", "2026-11-01")
    daka(capsys, "export", "no1", *day, "--output", "people.xlsx")
    assert sheets(no1 / "people.xlsx") == {
        "汇总": ("日期", "单位", "应报", "已报", "打卡率"),
        "明细": ("日期", "单位", "学号/编号", "姓名", "状态"),
    }
    assert row(no1 / "people.xlsx", "明细") == (
        datetime(2026, 11, 1),
        "A/1",
        "001",
        "张三",
        "未加入",
    )
    code, out, _ = daka(capsys, "export", "no1", *day, "--output", "raw.xlsx", "--raw")
    assert (code, out) == (0, "wrote 1 rows (2026-11-01 to 2026-11-01) to raw.xlsx\n")
    assert sheets(no1 / "raw.xlsx") == {
        "Summary": ("date", "unit_path", "expected", "reported", "rate"),
        "Detail": ("date", "unit_path", "member_id", "name", "status"),
    }
    assert row(no1 / "raw.xlsx", "Detail") == (
        datetime(2026, 11, 1),
        "A/1",
        "001",
        "张三",
        "not_enrolled",
    )
    daka(capsys, "export", "no1", *day, "--output", "zh.csv")
    daka(capsys, "org", "set", "no1", "--language", "en")
    daka(capsys, "export", "no1", *day, "--output", "en.csv", "--raw")
    assert (no1 / "zh.csv").read_bytes() == (no1 / "en.csv").read_bytes()
    assert (
        (no1 / "en.csv")
        .read_text("utf-8-sig")
        .splitlines()[1]
        .startswith("2026-11-01,A/1,001,张三,not_enrolled,")
    )
    daka(capsys, "export", "no1", *day, "--output", "en.xlsx")
    assert row(no1 / "en.xlsx", "Detail") == (
        datetime(2026, 11, 1),
        "A/1",
        "001",
        "张三",
        "not enrolled",
    )
    assert sheets(no1 / "en.xlsx")["Detail"] == ("Date", "Unit", "Member ID", "Name", "Status")


def sheets(path: Path) -> dict[str, tuple[object, ...]]:
    """Each sheet's first five headers."""
    book = load_workbook(path, read_only=True)
    try:
        return {name: next(book[name].iter_rows(values_only=True))[:5] for name in book.sheetnames}
    finally:
        book.close()


def row(path: Path, sheet: str) -> tuple[object, ...]:
    """The first five cells of a sheet's first row after the header."""
    book = load_workbook(path, read_only=True)
    try:
        return next(book[sheet].iter_rows(min_row=2, values_only=True))[:5]
    finally:
        book.close()
