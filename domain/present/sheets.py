"""The files of an export, written as its rows arrive: CSV (`CsvOut`) and XLSX (`xlsx_out`),
and `write_csv`/`write_xlsx` for rows already at hand. `storage.export` makes the rows.

CSV is UTF-8 with a BOM (Excel otherwise reads the Chinese as the local code page) and
``\\r\\n`` line ends. A text cell that a spreadsheet would run as a formula (it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, and is not a number) gets a leading ``'`` in
the CSV, since members type free text.

The XLSX has a summary sheet and a detail sheet (their names, headers and the detail's number
formats are a `Layout`). Its cells are typed by their Python value: text stays text (so ids
like ``00123`` keep their zeros, and formula-like text is stored as text, never as a formula),
an int or float is a number, a `date` or a naive `datetime` is an Excel serial number shown
through a date format, None is a blank cell. A detail column's number format (`Layout.formats`)
applies to its numbers and dates; a date in a column without one gets openpyxl's date format.
The summary's first column is a date (`DATE_FORMAT`) and its rate a percentage (`PERCENT`).

openpyxl lays the workbook out and, here, writes the detail rows too (`OpenpyxlOut`): about 12 s
for 100,000 rows. The composition root installs a faster writer with `use_xlsx_writer` (`bot.shims`
splices the rows into openpyxl's zip, ten times faster, as the same typed cells); a process that
only uses storage gets openpyxl's. openpyxl is imported only when a workbook is made.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, BinaryIO, Final, Protocol, Self

Cell = str | int | float | date | None  # a datetime is a date

# The summary sheet's columns: the rows of `storage.export.export_summary` follow them.
SUMMARY_HEADER: Final[tuple[str, ...]] = (
    "date",
    "unit_path",
    "expected",
    "reported",
    "rate",
    "missing",
    "abnormal",
    "excused",
    "not_enrolled",
    "unreachable",
    "voluntary",
    "withdrawn",
)
SHEETS: Final[tuple[str, str]] = ("Summary", "Detail")  # the machine contract's sheet names

DATE_FORMAT: Final = "yyyy-mm-dd"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
PERCENT: Final = "0.0%"
_SUMMARY_FORMATS: Final[Mapping[int, str]] = {
    SUMMARY_HEADER.index("date"): DATE_FORMAT,
    SUMMARY_HEADER.index("rate"): PERCENT,
}

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Layout:
    """A workbook's words and number formats, apart from its rows: the detail's header and each
    detail column's number format (None: General), the summary's header, the sheets' names
    (summary first)."""

    header: Sequence[str]
    formats: Sequence[str | None] = field(default=())
    summary_header: Sequence[str] = SUMMARY_HEADER
    sheets: tuple[str, str] = SHEETS

    def format_of(self, column: int) -> str | None:
        return self.formats[column] if column < len(self.formats) else None


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bytes:
    """UTF-8 with a BOM, `\\r\\n` line ends, minimal quoting; formula-like text neutralised."""
    out = io.BytesIO()
    with CsvOut(out, header) as sheet:
        sheet.write(rows)
    return out.getvalue()


class CsvOut:
    """A CSV written into a binary file as its rows come (`write_csv`'s format)."""

    def __init__(self, out: BinaryIO, header: Sequence[str]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        self._text.write("\ufeff")
        self._writer = csv.writer(self._text, lineterminator="\r\n")
        self._writer.writerow(header)

    def write(self, rows: Iterable[Sequence[Cell]]) -> None:
        self._writer.writerows([_csv_cell(v) for v in row] for row in rows)

    def __enter__(self) -> CsvOut:
        return self

    def __exit__(self, *exc: object) -> None:
        self._text.flush()
        self._text.detach()  # the file is the caller's to close


def _csv_cell(value: Cell) -> Cell:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER_RE.match(value):
        return "'" + value
    return value


XLSX_MAX_ROWS: Final = 1_048_576  # Excel's limit per worksheet, the header included
WIDTH_SAMPLE: Final = 500  # the first detail rows, that the column widths are measured on
_MAX_WIDTH: Final = 50


def write_xlsx(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    summary: Sequence[Sequence[Cell]],
    *,
    formats: Sequence[str | None] = (),
    summary_header: Sequence[str] = SUMMARY_HEADER,
    sheets: tuple[str, str] = SHEETS,
) -> bytes:
    """A workbook with a summary sheet (`summary_header` and `summary`) and a detail sheet
    (`header` and `rows`, numbers and dates shown in `formats`), as `xlsx_out` writes it."""
    if len(rows) + 1 > XLSX_MAX_ROWS:
        raise ValueError(too_many(len(rows)))
    layout = Layout(header, formats, summary_header, sheets)
    out = io.BytesIO()
    with xlsx_out(out, layout, summary, rows[:WIDTH_SAMPLE]) as book:
        book.write(rows)
    return out.getvalue()


def too_many(rows: int) -> str:
    """Why `rows` detail rows cannot be one worksheet."""
    return (
        f"{rows} detail rows do not fit in a worksheet ({XLSX_MAX_ROWS - 1} at most): "
        "export fewer days or a smaller scope, or use CSV"
    )


class XlsxWriter(Protocol):
    """What `xlsx_out` hands back: `write` takes detail rows as they come, and leaving the
    `with` finishes the file (nothing more is written when it is left on an exception)."""

    def write(self, rows: Sequence[Sequence[Cell]]) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None: ...


# A faster writer: `xlsx_out`'s arguments in, a writer of the same workbook (the same typed
# cells in the same number formats) out, or None to let openpyxl write it (the installed writer
# decides per process whether it may run).
XlsxMaker = Callable[
    [BinaryIO, Layout, Sequence[Sequence[Cell]], Sequence[Sequence[Cell]]],
    XlsxWriter | None,
]
_faster: XlsxMaker | None = None


def use_xlsx_writer(make: XlsxMaker | None) -> None:
    """From now on, `xlsx_out` asks `make` first (None: openpyxl writes every workbook): how
    `bot.shims` installs its row splice without storage knowing the composition root."""
    global _faster
    _faster = make


def xlsx_out(
    out: BinaryIO,
    layout: Layout,
    summary: Sequence[Sequence[Cell]],
    sample: Sequence[Sequence[Cell]],
) -> XlsxWriter:
    """The workbook writer: the installed one (`use_xlsx_writer`) unless it declines, else
    openpyxl's. `sample`: the first detail rows, that the column widths are measured on."""
    if _faster is not None and (writer := _faster(out, layout, summary, sample)) is not None:
        return writer
    return OpenpyxlOut(out, layout, summary, sample)


def laid_out(
    layout: Layout, summary: Sequence[Sequence[Cell]], sample: Sequence[Sequence[Cell]]
) -> tuple[Any, Any]:
    """A write-only workbook with the summary sheet whole and the detail sheet's header, and
    that detail sheet (openpyxl's objects: openpyxl is imported only when a workbook is made).
    Its autofilter covers the header only: the writer sets it over every row at the end."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)

    summary_name, detail_name = layout.sheets
    sheet = book.create_sheet(summary_name)
    _prepare(sheet, layout.summary_header, summary)
    sheet.append(_header_cells(sheet, layout.summary_header))
    for row in summary:
        sheet.append([typed_cell(sheet, v, _SUMMARY_FORMATS.get(i)) for i, v in enumerate(row)])

    sheet = book.create_sheet(detail_name)
    _prepare(sheet, layout.header, sample)
    sheet.append(_header_cells(sheet, layout.header))
    sheet.auto_filter.ref = f"A1:{column_letter(max(len(layout.header), 1))}1"
    return book, sheet


class OpenpyxlOut:
    """The workbook written as its detail rows come, every row by openpyxl's write-only mode
    (`typed_cell`): what runs unless a faster writer is installed (`use_xlsx_writer`)."""

    def __init__(
        self,
        out: BinaryIO,
        layout: Layout,
        summary: Sequence[Sequence[Cell]],
        sample: Sequence[Sequence[Cell]],
    ) -> None:
        self._out = out
        self._layout = layout
        self._book, self._sheet = laid_out(layout, summary, sample)
        self._next = 2

    def write(self, rows: Sequence[Sequence[Cell]]) -> None:
        if self._next - 1 + len(rows) > XLSX_MAX_ROWS:
            raise ValueError(too_many(self._next - 2 + len(rows)))
        sheet, format_of = self._sheet, self._layout.format_of
        for row in rows:
            sheet.append([typed_cell(sheet, v, format_of(i)) for i, v in enumerate(row)])
        self._next += len(rows)

    def __enter__(self) -> OpenpyxlOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            last = column_letter(max(len(self._layout.header), 1))
            self._sheet.auto_filter.ref = f"A1:{last}{self._next - 1}"
            self._book.save(self._out)


# What XML 1.0 cannot carry: openpyxl's ILLEGAL_CHARACTERS_RE (control characters), and the
# non-characters U+FFFE, U+FFFF and lone surrogates, which it lets through into broken files.
NOT_XML_CHARACTERS: Final = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML: Final = re.compile(f"[{NOT_XML_CHARACTERS}]")


def _prepare(sheet: Any, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Frozen header row and column widths: both must be set before the first row is written."""
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header):
        sample = (row[index] for row in rows[:WIDTH_SAMPLE] if index < len(row))
        width = max([_display_width(name), *(_display_width(v) for v in sample)])
        sheet.column_dimensions[column_letter(index + 1)].width = min(width + 2, _MAX_WIDTH)


def column_letter(number: int) -> str:
    """A column's letters: 1 is A, 27 is AA (openpyxl's `get_column_letter`, not imported here:
    a handler checks an export's days in `storage.export`, which imports this module, without
    loading openpyxl)."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _text_cell(sheet: Any, value: Cell) -> Any:
    from openpyxl.cell import WriteOnlyCell

    return WriteOnlyCell(sheet, value=value)


def formatted_cell(sheet: Any, value: Cell, number_format: str) -> Any:
    cell = _text_cell(sheet, value)
    cell.number_format = number_format
    return cell


def _display_width(value: Cell) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len(DATETIME_FORMAT)
    if isinstance(value, date):
        return len(DATE_FORMAT)
    text = value if isinstance(value, str) else f"{value}"
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _header_cells(sheet: Any, header: Sequence[str]) -> list[Any]:
    cells = []
    for name in header:
        from openpyxl.styles import Font

        cell = _text_cell(sheet, name)
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells


def typed_cell(sheet: Any, value: Cell, number_format: str | None) -> Any:
    """A value as openpyxl should write it: a number or date in `number_format` (openpyxl's
    own date format without one), blank for None and "", and text that would be read as a
    formula or an error kept as text."""
    if not isinstance(value, str):
        if value is None or number_format is None:
            return value
        return formatted_cell(sheet, value, number_format)
    text: str = value
    if _NOT_XML.search(text):
        text = _NOT_XML.sub("", text)  # characters XML cannot carry
    if not text:
        return None
    if text[0] in "=#":
        cell = _text_cell(sheet, text)
        cell.data_type = "s"
        return cell
    return text
