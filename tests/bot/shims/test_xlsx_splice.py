"""The XLSX row splice (bot/shims/xlsx_splice.py) writes the workbook openpyxl writes when it
steps aside: the same cells, typed alike, in the same number formats. (tests/storage/test_export.py
reads back what `write_xlsx` writes, through the splice, which `import bot` installs in the test
process.)"""

from __future__ import annotations

import io
import math
from datetime import date, datetime
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.shims import xlsx_splice
from domain.present.sheets import DATE_FORMAT, DATETIME_FORMAT, Cell, write_xlsx
from storage.export import TOTAL

TEMPERATURE = '0.0" °C"'  # the number format of the health form's temperature

TYPED_ROWS: list[list[Cell]] = [
    [date(2026, 11, 28), datetime(2026, 11, 28, 9, 5, 7), 36.5, " leading", "00123", 3],
    [date(1900, 2, 28), datetime(1900, 1, 1, 23, 59, 59), 0.0, "=1+1", "#N/A", True],
    [None, datetime(2026, 11, 28, 0, 0, 0, 654321), math.nan, "<b>&amp;</b>", "", -2],
    [date(2026, 11, 29), None, 1e20, "bell\x07", None, 2**40],
]


def cells(data: bytes, name: str) -> list[list[tuple[Any, str, str]]]:
    """Every cell of a sheet as (value, data type, number format), what a spreadsheet shows."""
    book = load_workbook(io.BytesIO(data))
    return [
        [(c.value, c.data_type, c.number_format) for c in row] for row in book[name].iter_rows()
    ]


def test_when_the_splice_steps_aside_openpyxl_writes_the_same_workbook(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On an openpyxl other than 3.1 the rows are not spliced into its output but written by
    openpyxl itself: slower, and the same cells, typed alike, in the same number formats."""
    header = ["a", "b", "c", "d"]
    rows: list[list[Cell]] = [
        [" leading", "trailing ", "=1+1", "00123"],
        ["<b>&amp;</b>", "bell\x07", "", "#N/A"],
        ["学院/班级", "mid\uffffdle", "-2", "tab\tinside"],
        *TYPED_ROWS,
    ]
    formats = [DATE_FORMAT, DATETIME_FORMAT, TEMPERATURE]
    summary: list[list[Cell]] = [
        [date(2026, 11, 28), TOTAL, 3, 2, 0.6667, 1, 0, 0, 0, 0],
        [date(2026, 11, 29), TOTAL, 0, 0, None, 0, 0, 3, 0, 0],
    ]
    spliced = write_xlsx(header, rows, summary, formats=formats, sheets=("汇总", "明细"))
    monkeypatch.setattr(xlsx_splice.SHIM, "written_for", {"openpyxl": "3.0"})
    xlsx_splice._allowed.cache_clear()
    try:
        stock = write_xlsx(header, rows, summary, formats=formats, sheets=("汇总", "明细"))
    finally:
        xlsx_splice._allowed.cache_clear()
    assert "openpyxl 3.1." in caplog.text and "is not the 3.0.x" in caplog.text
    for sheet in ("汇总", "明细"):
        assert cells(stock, sheet) == cells(spliced, sheet)
    detail = cells(spliced, "明细")
    assert detail[1][2] == ("=1+1", "s", "General")  # text, never a formula
    assert detail[4][:3] == [
        (datetime(2026, 11, 28), "d", DATE_FORMAT),
        (datetime(2026, 11, 28, 9, 5, 7), "d", DATETIME_FORMAT),
        (36.5, "n", TEMPERATURE),
    ]
    assert detail[5][:2] == [
        (datetime(1900, 2, 28), "d", DATE_FORMAT),  # before Excel's leap-day bug
        (datetime(1900, 1, 1, 23, 59, 59), "d", DATETIME_FORMAT),
    ]
    assert detail[5][5] == (True, "b", "General")
    assert detail[6][1] == (datetime(2026, 11, 28, 0, 0, 0, 654000), "d", DATETIME_FORMAT)
    assert detail[7][5] == (2**40, "n", "General")
