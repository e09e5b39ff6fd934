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

openpyxl lays the workbook out; the detail rows are spliced into its zip (`XlsxOut`, behind the
`SPLICE` shim) or, when that shim steps aside, written by openpyxl itself (`OpenpyxlOut`).
openpyxl is imported only when a workbook is made.

One module past 400 lines on purpose: the splice must write exactly the cells openpyxl writes,
and the layout, both writers and the tests comparing them are read side by side.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import Any, BinaryIO, Final
from xml.etree import ElementTree

from storage.compat import Shim

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
        raise ValueError(_too_many(len(rows)))
    layout = Layout(header, formats, summary_header, sheets)
    out = io.BytesIO()
    with xlsx_out(out, layout, summary, rows[:WIDTH_SAMPLE]) as book:
        book.write(rows)
    return out.getvalue()


def _too_many(rows: int) -> str:
    return (
        f"{rows} detail rows do not fit in a worksheet ({XLSX_MAX_ROWS - 1} at most): "
        "export fewer days or a smaller scope, or use CSV"
    )


# openpyxl's own serialiser (without lxml, which Daka does not install) needs about 12 s for
# 100,000 rows of 16 cells, so the detail rows are written here, as the same cells openpyxl
# writes (inline strings, numbers, dates as serial numbers with the style openpyxl registered
# for their format), into the sheet openpyxl laid out: about 1.2 s.

_MAIN_NS: Final = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS: Final = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL_NS: Final = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_XML_ESCAPES: Final[Mapping[str, str]] = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_XML_SPECIAL: Final = re.compile(f"[{''.join(_XML_ESCAPES)}]")
_AUTO_FILTER: Final = re.compile(r'<autoFilter ref="[^"]*"')


def _openpyxl_layout() -> list[str]:
    """What `XlsxOut` expects of a saved write-only workbook: the sheet found through
    `xl/workbook.xml` and its relationships, with one `</sheetData>` to write before, and a
    cell's `style_id` naming the `cellXfs` entry of its number format in `xl/styles.xml`."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Detail")
    probe = WriteOnlyCell(sheet, value=1.5)
    probe.number_format = '0.0" probe"'
    style = probe.style_id
    sheet.append(["x"])
    buffer = io.BytesIO()
    book.save(buffer)
    problems = []
    with zipfile.ZipFile(buffer) as saved:
        part = _sheet_part(saved, "Detail")
        if saved.read(part).decode("utf-8").count("</sheetData>") != 1:
            problems.append(f"openpyxl's {part} has no single </sheetData>")
        styles = ElementTree.fromstring(saved.read("xl/styles.xml"))
    codes = {n.get("numFmtId"): n.get("formatCode") for n in styles.iter(f"{_MAIN_NS}numFmt")}
    xfs = [x for c in styles.iter(f"{_MAIN_NS}cellXfs") for x in c.iter(f"{_MAIN_NS}xf")]
    if not isinstance(style, int) or not 0 <= style < len(xfs):
        problems.append(f"a cell's style_id {style!r} is no cellXfs entry")
    elif codes.get(xfs[style].get("numFmtId")) != probe.number_format:
        problems.append(f"cellXfs entry {style} is not the cell's number format")
    return problems


SPLICE = Shim(
    name="XLSX row splice (storage/sheets.py)",
    written_for={"openpyxl": "3.1"},
    probe=_openpyxl_layout,
)


@cache
def _splice_allowed() -> bool:
    """Checked once per process; when it steps aside openpyxl writes the rows, ten times
    slower."""
    return SPLICE.enabled()


@dataclass(frozen=True)
class _Styles:
    """The `s` attributes a detail cell gets, as openpyxl registered them while laying out:
    per column, the style of its number format (for numbers and dates); for dates in a column
    without one, openpyxl's date and date-time formats."""

    columns: Sequence[str]  # ' s="N"' or ""
    date: str
    datetime: str

    def of(self, column: int, kind: type) -> str:
        given = self.columns[column] if column < len(self.columns) else ""
        if given or not issubclass(kind, date):
            return given
        return self.datetime if issubclass(kind, datetime) else self.date


class XlsxOut:
    """A workbook written into a binary file as its detail rows come.

    openpyxl's write-only mode lays out both sheets (bold frozen header, column widths from the
    `sample` of first detail rows, number formats, the detail's autofilter) with the summary
    and no detail rows; its zip is copied into `out` up to the detail sheet, whose rows `write`
    adds, and `close` (leaving the `with`) ends that sheet, its autofilter over every row, and
    copies the rest. The rows' XML is compressed in a helper thread while the next rows are
    formatted: zlib lets go of the GIL (0.7 s of the 1.9 s that 100,000 rows took one after
    the other); one worker keeps the chunks in order."""

    def __init__(
        self,
        out: BinaryIO,
        layout: Layout,
        summary: Sequence[Sequence[Cell]],
        sample: Sequence[Sequence[Cell]],
    ) -> None:
        self._header = layout.header
        book, _sheet, self._styles = _laid_out(layout, summary, sample)
        buffer = io.BytesIO()
        book.save(buffer)
        self._source = zipfile.ZipFile(buffer)
        self._target = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self._part = _sheet_part(self._source, layout.sheets[1])
        prefix, marker, self._suffix = (
            self._source.read(self._part).decode("utf-8").partition("</sheetData>")
        )
        if not marker:
            raise AssertionError(f"no sheet data in {self._part}")
        self._suffix = marker + self._suffix
        infos = self._source.infolist()
        at = [i.filename for i in infos].index(self._part)
        for info in infos[:at]:
            self._target.writestr(info, self._source.read(info))
        self._rest = infos[at + 1 :]
        self._stream = self._target.open(self._part, "w", force_zip64=True)
        self._deflate = ThreadPoolExecutor(1, thread_name_prefix="xlsx-deflate")
        self._writing: deque[Future[int]] = deque()
        self._letters: list[str] = []
        self._shapes: dict[tuple[type, ...], _Shape] = {}
        self._next = 2  # the row number of the next detail row (the header is row 1)
        self._put(prefix)

    def _put(self, text: str) -> None:
        self._writing.append(self._deflate.submit(self._stream.write, text.encode()))
        if len(self._writing) > 2:
            self._writing.popleft().result()

    def write(self, rows: Sequence[Sequence[Cell]]) -> None:
        if self._next - 1 + len(rows) > XLSX_MAX_ROWS:
            raise ValueError(_too_many(self._next - 2 + len(rows)))
        width = max((len(row) for row in rows), default=0)
        while len(self._letters) < width:
            self._letters.append(_column_letter(len(self._letters) + 1))
        for chunk in _rows_xml(rows, self._next, self._letters, self._styles, self._shapes):
            self._put(chunk)
        self._next += len(rows)

    def __enter__(self) -> XlsxOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                last = _column_letter(max(len(self._header), 1))
                self._put(
                    _AUTO_FILTER.sub(f'<autoFilter ref="A1:{last}{self._next - 1}"', self._suffix)
                )
            while self._writing:
                self._writing.popleft().result()
        finally:
            self._deflate.shutdown()
            self._stream.close()
        if kind is None:
            for info in self._rest:
                self._target.writestr(info, self._source.read(info))
        self._target.close()
        self._source.close()


def _laid_out(
    layout: Layout, summary: Sequence[Sequence[Cell]], sample: Sequence[Sequence[Cell]]
) -> tuple[Any, Any, _Styles]:
    """A write-only workbook with the summary sheet whole and the detail sheet's header, that
    detail sheet, and the styles of its number formats, registered with the workbook here so
    that they are in its styles.xml (openpyxl's objects: openpyxl is imported only when a
    workbook is made)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)

    summary_name, detail_name = layout.sheets
    sheet = book.create_sheet(summary_name)
    _prepare(sheet, layout.summary_header, summary)
    sheet.append(_header_cells(sheet, layout.summary_header))
    for row in summary:
        sheet.append([_typed_cell(sheet, v, _SUMMARY_FORMATS.get(i)) for i, v in enumerate(row)])

    sheet = book.create_sheet(detail_name)
    _prepare(sheet, layout.header, sample)
    sheet.append(_header_cells(sheet, layout.header))
    sheet.auto_filter.ref = f"A1:{_column_letter(max(len(layout.header), 1))}1"  # see XlsxOut
    styles = _Styles(
        columns=[
            "" if f is None else f' s="{_formatted(sheet, 0, f).style_id}"' for f in layout.formats
        ],
        date=f' s="{_text_cell(sheet, date(2000, 1, 1)).style_id}"',
        datetime=f' s="{_text_cell(sheet, datetime(2000, 1, 1)).style_id}"',
    )
    return book, sheet, styles


class OpenpyxlOut:
    """The same workbook as `XlsxOut`, every row written by openpyxl's write-only mode: what
    runs when the splice shim steps aside (`SPLICE`), about ten times slower."""

    def __init__(
        self,
        out: BinaryIO,
        layout: Layout,
        summary: Sequence[Sequence[Cell]],
        sample: Sequence[Sequence[Cell]],
    ) -> None:
        self._out = out
        self._layout = layout
        self._book, self._sheet, _styles = _laid_out(layout, summary, sample)
        self._next = 2

    def write(self, rows: Sequence[Sequence[Cell]]) -> None:
        if self._next - 1 + len(rows) > XLSX_MAX_ROWS:
            raise ValueError(_too_many(self._next - 2 + len(rows)))
        sheet, format_of = self._sheet, self._layout.format_of
        for row in rows:
            sheet.append([_typed_cell(sheet, v, format_of(i)) for i, v in enumerate(row)])
        self._next += len(rows)

    def __enter__(self) -> OpenpyxlOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            last = _column_letter(max(len(self._layout.header), 1))
            self._sheet.auto_filter.ref = f"A1:{last}{self._next - 1}"
            self._book.save(self._out)


def xlsx_out(
    out: BinaryIO,
    layout: Layout,
    summary: Sequence[Sequence[Cell]],
    sample: Sequence[Sequence[Cell]],
) -> XlsxOut | OpenpyxlOut:
    """The workbook writer: rows spliced into openpyxl's layout, or openpyxl's own when the
    splice shim steps aside."""
    if _splice_allowed():
        return XlsxOut(out, layout, summary, sample)
    return OpenpyxlOut(out, layout, summary, sample)


def _sheet_part(book: zipfile.ZipFile, sheet_name: str) -> str:
    """The zip member holding a sheet, found through the workbook and its relationships."""
    workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    rel_id = next(
        s.get(f"{_REL_NS}id")
        for s in workbook.iter(f"{_MAIN_NS}sheet")
        if s.get("name") == sheet_name
    )
    rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next(
        r.get("Target", "")
        for r in rels.iter(f"{_PACKAGE_REL_NS}Relationship")
        if r.get("Id") == rel_id
    )
    return target.lstrip("/") if target.startswith("/") else f"xl/{target}"


@dataclass(frozen=True, slots=True)
class _Shape:
    """How rows whose cells have given types are written: one `str.format` template ({0} the
    row number, {i} the i-th cell), the row's texts (to check they need no care) and numbers
    (to check they are finite), and the columns holding dates and date-times (turned into
    serial numbers first). `fast` is False for a type the template cannot write."""

    template: str
    texts: Callable[[Sequence[Cell]], tuple[Any, ...]] | None
    numbers: Callable[[Sequence[Cell]], tuple[Any, ...]] | None
    days: tuple[int, ...]
    times: tuple[int, ...]
    fast: bool


def _rows_xml(
    rows: Sequence[Sequence[Cell]],
    first: int,
    letters: Sequence[str],
    styles: _Styles,
    shapes: dict[tuple[type, ...], _Shape],
) -> Iterator[str]:
    """`<row>` elements numbered from `first`, in chunks of five thousand rows; `letters` name
    the columns, `shapes` are kept across calls."""
    chunk: list[str] = []
    append = chunk.append
    serials: dict[date, float] = {}
    for number, row in enumerate(rows, start=first):
        kinds = tuple(map(type, row))
        shape = shapes.get(kinds)
        if shape is None:
            shape = shapes[kinds] = _shape(kinds, letters, styles)
        if (
            shape.fast
            and (shape.texts is None or _plain(shape.texts(row)))
            and (shape.numbers is None or _finite(shape.numbers(row)))
        ):
            # The common row: nothing to escape, drop or keep apart, so one format of its
            # shape's template writes it.
            if shape.days or shape.times:
                values: list[Any] = list(row)
                for column in shape.days:  # the same few days on every row: remembered
                    day = values[column]
                    serial = serials.get(day)
                    if serial is None:
                        serial = serials[day] = _serial(day)
                    values[column] = serial
                for column in shape.times:
                    values[column] = _serial(values[column])
                append(shape.template.format(number, *values))
            else:
                append(shape.template.format(number, *row))
        else:
            append(f'<row r="{number}">')
            for column, (letter, value) in enumerate(zip(letters, row, strict=False)):
                cell = _cell_xml(f"{letter}{number}", value, styles, column)
                if cell:
                    append(cell)
            append("</row>")
        if len(chunk) > 5_000:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def _shape(kinds: Sequence[type], letters: Sequence[str], styles: _Styles) -> _Shape:
    parts = ['<row r="{0}">']
    texts: list[int] = []
    numbers: list[int] = []
    days: list[int] = []
    times: list[int] = []
    fast = True
    for column, (letter, kind) in enumerate(zip(letters, kinds, strict=False)):
        at, given = f"{letter}{{0}}", column + 1
        if kind is type(None):
            continue
        if kind is str:
            texts.append(column)
            parts.append(f'<c r="{at}" t="inlineStr"><is><t>{{{given}}}</t></is></c>')
        elif kind is bool:
            style = styles.of(column, kind)
            parts.append(f'<c r="{at}"{style} t="b"><v>{{{given}:d}}</v></c>')
        elif kind is int or kind is float:
            numbers.append(column)
            style = styles.of(column, kind)
            parts.append(f'<c r="{at}"{style} t="n"><v>{{{given}:.16g}}</v></c>')
        elif kind is date or kind is datetime:
            (days if kind is date else times).append(column)
            style = styles.of(column, kind)
            parts.append(f'<c r="{at}"{style} t="n"><v>{{{given}:.16g}}</v></c>')
        else:
            fast = False  # a subclass, or a type only the careful path judges
    parts.append("</row>")
    return _Shape(
        "".join(parts), _getter(texts), _getter(numbers), tuple(days), tuple(times), fast
    )


def _getter(columns: Sequence[int]) -> Callable[[Sequence[Cell]], tuple[Any, ...]] | None:
    if not columns:
        return None
    if len(columns) == 1:
        only = columns[0]
        return lambda row: (row[only],)
    return itemgetter(*columns)


def _cell_xml(at: str, value: Cell, styles: _Styles, column: int) -> str:
    """One cell as openpyxl writes it ("" for a blank one), for the rows that need care."""
    if value is None or value == "":
        return ""  # a blank cell, as openpyxl leaves None
    if isinstance(value, str):
        text = _xml_text(value)
        if not text:
            return ""
        space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
        return f'<c r="{at}" t="inlineStr"><is><t{space}>{text}</t></is></c>'
    style = styles.of(column, type(value))
    if isinstance(value, bool):
        return f'<c r="{at}"{style} t="b"><v>{value:d}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{at}"{style} t="n"><v>{_number_text(value)}</v></c>'
    if isinstance(value, date):
        return f'<c r="{at}"{style} t="n"><v>{_serial(value):.16g}</v></c>'
    raise TypeError(f"a cell cannot hold {type(value).__name__}: {value!r}")


def _number_text(value: float) -> str:
    """openpyxl's `safe_string` of a number: 16 significant digits, nothing when not finite."""
    return f"{value:.16g}" if math.isfinite(value) else ""


def _finite(numbers: tuple[Any, ...]) -> bool:
    """Every number finite and within floats (a sum overflowing is a false alarm, sent down
    the careful path, which writes it right)."""
    try:
        return math.isfinite(sum(numbers))
    except OverflowError:
        return False


_EPOCH: Final = date(1899, 12, 30).toordinal()  # Excel's day 0 (in its 1900 date system)


def _serial(value: date) -> float:
    """A date or naive datetime as an Excel serial number, as openpyxl's `to_excel`: days
    since 1899-12-30 (one less in January and February 1900, Excel's leap-day bug) plus the
    fraction of the day."""
    days = value.toordinal() - _EPOCH
    if 0 < days <= 60:
        days -= 1
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise TypeError("Excel has no time zones: give the local time, without tzinfo")
        seconds = value.hour * 3600 + value.minute * 60 + value.second
        return days + (seconds + value.microsecond / 10**6) / 86400
    return days + 0.0


# What XML 1.0 cannot carry: openpyxl's ILLEGAL_CHARACTERS_RE (control characters), and the
# non-characters U+FFFE, U+FFFF and lone surrogates, which it lets through into broken files.
_NOT_XML_CHARACTERS: Final = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML: Final = re.compile(f"[{_NOT_XML_CHARACTERS}]")
_MARKUP_OR_NOT_XML: Final = re.compile(f"[{''.join(_XML_ESCAPES)}{_NOT_XML_CHARACTERS}]")

# A row's texts joined by (and framed in) a character that is neither whitespace nor markup (a
# private-use one): three searches and a look for two in a row (an empty text) then tell
# whether any text needs `_xml_text`, `xml:space` or leaving out (the separator inside a text
# can only make a search match, sending the row down the careful path). Three simple patterns,
# because one alternation of them scans several times slower.
_SEPARATOR: Final = "\ue000"
_EMPTY: Final = _SEPARATOR * 2
_SPACE_AFTER: Final = re.compile(_SEPARATOR + r"\s")
_SPACE_BEFORE: Final = re.compile(r"\s" + _SEPARATOR)


def _plain(texts: Sequence[str]) -> bool:
    """No text of the row is empty, has markup or illegal characters, or space at either
    end."""
    text = _SEPARATOR + _SEPARATOR.join(texts) + _SEPARATOR
    return not (
        _EMPTY in text
        or _MARKUP_OR_NOT_XML.search(text)
        or _SPACE_AFTER.search(text)
        or _SPACE_BEFORE.search(text)
    )


def _xml_text(value: str) -> str:
    """Text for an XML text node: characters XML cannot carry dropped, markup escaped."""
    if _NOT_XML.search(value):
        value = _NOT_XML.sub("", value)
    if _XML_SPECIAL.search(value):
        value = _XML_SPECIAL.sub(lambda m: _XML_ESCAPES[m.group()], value)
    return value


def _prepare(sheet: Any, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    """Frozen header row and column widths: both must be set before the first row is written."""
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header):
        sample = (row[index] for row in rows[:WIDTH_SAMPLE] if index < len(row))
        width = max([_display_width(name), *(_display_width(v) for v in sample)])
        sheet.column_dimensions[_column_letter(index + 1)].width = min(width + 2, _MAX_WIDTH)


def _column_letter(number: int) -> str:
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


def _formatted(sheet: Any, value: Cell, number_format: str) -> Any:
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


def _typed_cell(sheet: Any, value: Cell, number_format: str | None) -> Any:
    """A value as openpyxl should write it: a number or date in `number_format` (openpyxl's
    own date format without one), blank for None and "", and text that would be read as a
    formula or an error kept as text."""
    if not isinstance(value, str):
        if value is None or number_format is None:
            return value
        return _formatted(sheet, value, number_format)
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
