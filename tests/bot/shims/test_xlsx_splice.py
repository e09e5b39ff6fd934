"""The XLSX row splice (bot/shims/xlsx_splice.py) writes the workbook openpyxl writes when it
steps aside. (tests/storage/test_export.py reads back what `write_xlsx` writes, through the
splice, which `import bot` installs in the test process.)"""

from __future__ import annotations

import io
from typing import Any

import pytest
from openpyxl import load_workbook

from bot.shims import xlsx_splice
from storage.export import TOTAL
from storage.sheets import write_xlsx


def read_sheet(data: bytes, name: str) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(data))
    return [list(row) for row in book[name].iter_rows(values_only=True)]


def test_when_the_splice_steps_aside_openpyxl_writes_the_same_workbook(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On an openpyxl other than 3.1 the rows are not spliced into its output but written by
    openpyxl itself: slower, and the same cells."""
    header = ["a", "b", "c", "d"]
    rows = [
        [" leading", "trailing ", "=1+1", "00123"],
        ["<b>&amp;</b>", "bell\x07", "", "#N/A"],
        ["学院/班级", "mid\uffffdle", "-2", "tab\tinside"],
    ]
    summary: list[list[str | int | float]] = [["2026-11-28", TOTAL, 3, 2, 0.6667, 1, 0, 0, 0, 0]]
    spliced = write_xlsx(header, rows, summary)
    monkeypatch.setattr(xlsx_splice.SHIM, "written_for", {"openpyxl": "3.0"})
    xlsx_splice._allowed.cache_clear()
    try:
        stock = write_xlsx(header, rows, summary)
    finally:
        xlsx_splice._allowed.cache_clear()
    assert "openpyxl 3.1." in caplog.text and "is not the 3.0.x" in caplog.text
    for sheet in ("Summary", "Detail"):
        assert read_sheet(stock, sheet) == read_sheet(spliced, sheet)
    assert read_sheet(stock, "Detail")[1][2] == "=1+1"  # text, never a formula
