"""The files of an export, written as its rows arrive: CSV (`CsvOut`) and XLSX (`xlsx_out`),
and `write_csv`/`write_xlsx` for rows already at hand. `storage.export` makes the rows.

CSV is UTF-8 with a BOM (Excel otherwise reads the Chinese as the local code page) and
``\\r\\n`` line ends. A text cell that a spreadsheet would run as a formula (it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, and is not a number) gets a leading ``'`` in
the CSV, since members type free text. The XLSX has a ``Summary`` sheet (`SUMMARY_HEADER`, the
rate as a percentage) and a ``Detail`` sheet; its detail cells are all text (so ids like
``00123`` keep their zeros) and formula-like text is stored as text, never as a formula.

openpyxl lays the workbook out; the detail rows are spliced into its zip (`XlsxOut`, behind the
`SPLICE` shim) or, when that shim steps aside, written by openpyxl itself (`OpenpyxlOut`).
openpyxl is imported only when a workbook is made.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import Any, BinaryIO, Final
from xml.etree import ElementTree

from storage.compat import Shim

Cell = str | int | float

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

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_RE: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


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
_PERCENT: Final = "0.0%"


def write_xlsx(
    header: Sequence[str], rows: Sequence[Sequence[str]], summary: Sequence[Sequence[Cell]]
) -> bytes:
    """A workbook with a `Summary` sheet (`SUMMARY_HEADER` and `summary`) and a `Detail` sheet
    (`header` and `rows`), as `XlsxOut` writes it."""
    if len(rows) + 1 > XLSX_MAX_ROWS:
        raise ValueError(_too_many(len(rows)))
    out = io.BytesIO()
    with xlsx_out(out, header, summary, rows[:WIDTH_SAMPLE]) as book:
        book.write(rows)
    return out.getvalue()


def _too_many(rows: int) -> str:
    return (
        f"{rows} detail rows do not fit in a worksheet ({XLSX_MAX_ROWS - 1} at most): "
        "export fewer days or a smaller scope, or use CSV"
    )


# openpyxl's own serialiser (without lxml, which Daka does not install) needs about 12 s for
# 100,000 rows of 16 cells, so the detail rows are written here, as the same inline-string cells
# openpyxl writes, into the sheet openpyxl laid out: about 1.2 s.

_MAIN_NS: Final = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS: Final = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PACKAGE_REL_NS: Final = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_XML_ESCAPES: Final[Mapping[str, str]] = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_XML_SPECIAL: Final = re.compile(f"[{''.join(_XML_ESCAPES)}]")
_AUTO_FILTER: Final = re.compile(r'<autoFilter ref="[^"]*"')
_DETAIL: Final = "Detail"


def _openpyxl_layout() -> list[str]:
    """What `XlsxOut` expects of a saved write-only workbook: the sheet found through
    `xl/workbook.xml` and its relationships, with one `</sheetData>` to write before."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    book.create_sheet("Detail").append(["x"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as saved:
        part = _sheet_part(saved, "Detail")
        if saved.read(part).decode("utf-8").count("</sheetData>") != 1:
            return [f"openpyxl's {part} has no single </sheetData>"]
    return []


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


class XlsxOut:
    """A workbook written into a binary file as its detail rows come.

    openpyxl's write-only mode lays out both sheets (bold frozen header, column widths from the
    `sample` of first detail rows, percentages, the detail's autofilter) with the summary and
    no detail rows; its zip is copied into `out` up to the detail sheet, whose rows `write`
    adds, and `close` (leaving the `with`) ends that sheet, its autofilter over every row, and
    copies the rest. The rows' XML is compressed in a helper thread while the next rows are
    formatted: zlib lets go of the GIL (0.7 s of the 1.9 s that 100,000 rows took one after
    the other); one worker keeps the chunks in order."""

    def __init__(
        self,
        out: BinaryIO,
        header: Sequence[str],
        summary: Sequence[Sequence[Cell]],
        sample: Sequence[Sequence[str]],
    ) -> None:
        self._header = header
        self._source = zipfile.ZipFile(io.BytesIO(_layout(header, summary, sample)))
        self._target = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)
        self._part = _sheet_part(self._source, _DETAIL)
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
        self._templates: dict[tuple[bool, ...], str] = {}
        self._next = 2  # the row number of the next detail row (the header is row 1)
        self._put(prefix)

    def _put(self, text: str) -> None:
        self._writing.append(self._deflate.submit(self._stream.write, text.encode()))
        if len(self._writing) > 2:
            self._writing.popleft().result()

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        if self._next - 1 + len(rows) > XLSX_MAX_ROWS:
            raise ValueError(_too_many(self._next - 2 + len(rows)))
        width = max((len(row) for row in rows), default=0)
        while len(self._letters) < width:
            self._letters.append(_column_letter(len(self._letters) + 1))
        for chunk in _rows_xml(rows, self._next, self._letters, self._templates):
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


def _layout(
    header: Sequence[str], summary: Sequence[Sequence[Cell]], sample: Sequence[Sequence[str]]
) -> bytes:
    """The workbook without detail rows: the summary sheet whole, the detail sheet's header."""
    book, _detail = _laid_out(header, summary, sample)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _laid_out(
    header: Sequence[str], summary: Sequence[Sequence[Cell]], sample: Sequence[Sequence[str]]
) -> tuple[Any, Any]:
    """A write-only workbook with the summary sheet whole and the detail sheet's header, and
    that detail sheet (openpyxl's objects: openpyxl is imported only when a workbook is made)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)

    sheet = book.create_sheet("Summary")
    _prepare(sheet, SUMMARY_HEADER, summary)
    sheet.append(_header_cells(sheet, SUMMARY_HEADER))
    rate_column = SUMMARY_HEADER.index("rate")
    for row in summary:
        cells: list[Any] = [_xlsx_cell(sheet, v) for v in row]
        rate = row[rate_column]
        if isinstance(rate, int | float):
            cell = _text_cell(sheet, rate)
            cell.number_format = _PERCENT
            cells[rate_column] = cell
        sheet.append(cells)

    sheet = book.create_sheet(_DETAIL)
    _prepare(sheet, header, sample)
    sheet.append(_header_cells(sheet, header))
    sheet.auto_filter.ref = f"A1:{_column_letter(max(len(header), 1))}1"  # see XlsxOut
    return book, sheet


class OpenpyxlOut:
    """The same workbook as `XlsxOut`, every row written by openpyxl's write-only mode: what
    runs when the splice shim steps aside (`SPLICE`), about ten times slower."""

    def __init__(
        self,
        out: BinaryIO,
        header: Sequence[str],
        summary: Sequence[Sequence[Cell]],
        sample: Sequence[Sequence[str]],
    ) -> None:
        self._out = out
        self._header = header
        self._book, self._sheet = _laid_out(header, summary, sample)
        self._next = 2

    def write(self, rows: Sequence[Sequence[str]]) -> None:
        if self._next - 1 + len(rows) > XLSX_MAX_ROWS:
            raise ValueError(_too_many(self._next - 2 + len(rows)))
        sheet = self._sheet
        for row in rows:
            sheet.append([_xlsx_cell(sheet, v) for v in row])
        self._next += len(rows)

    def __enter__(self) -> OpenpyxlOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            last = _column_letter(max(len(self._header), 1))
            self._sheet.auto_filter.ref = f"A1:{last}{self._next - 1}"
            self._book.save(self._out)


def xlsx_out(
    out: BinaryIO,
    header: Sequence[str],
    summary: Sequence[Sequence[Cell]],
    sample: Sequence[Sequence[str]],
) -> XlsxOut | OpenpyxlOut:
    """The workbook writer: rows spliced into openpyxl's layout, or openpyxl's own when the
    splice shim steps aside."""
    if _splice_allowed():
        return XlsxOut(out, header, summary, sample)
    return OpenpyxlOut(out, header, summary, sample)


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


def _rows_xml(
    rows: Sequence[Sequence[str]],
    first: int,
    letters: Sequence[str],
    templates: dict[tuple[bool, ...], str],
) -> Iterator[str]:
    """`<row>` elements of inline-string cells numbered from `first`, in chunks of five
    thousand rows; `letters` name the columns, `templates` are kept across calls."""
    chunk: list[str] = []
    append = chunk.append
    for number, row in enumerate(rows, start=first):
        if _plain(row):
            # The common row: nothing to escape or drop, no cell starts or ends with a space,
            # so one format of a template for its pattern of blank cells writes it.
            filled = tuple(map(bool, row))
            template = templates.get(filled)
            if template is None:
                template = templates[filled] = _row_template(letters, filled)
            append(template.format(number, *filter(None, row)))
        else:
            append(f'<row r="{number}">')
            for letter, value in zip(letters, row, strict=False):
                if not value:
                    continue  # a blank cell, as openpyxl leaves None
                text = _xml_text(value)
                if not text:
                    continue
                space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
                append(f'<c r="{letter}{number}" t="inlineStr"><is><t{space}>{text}</t></is></c>')
            append("</row>")
        if len(chunk) > 5_000:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)


def _row_template(letters: Sequence[str], filled: Sequence[bool]) -> str:
    """A `str.format` template of a row whose cells `filled` are not blank: {0} is the row
    number, {1}, {2}, ... the texts of those cells."""
    parts = ['<row r="{0}">']
    given = 0
    for letter, present in zip(letters, filled, strict=False):
        if present:
            given += 1
            parts.append(f'<c r="{letter}{{0}}" t="inlineStr"><is><t>{{{given}}}</t></is></c>')
    parts.append("</row>")
    return "".join(parts)


# What XML 1.0 cannot carry: openpyxl's ILLEGAL_CHARACTERS_RE (control characters), and the
# non-characters U+FFFE, U+FFFF and lone surrogates, which it lets through into broken files.
_NOT_XML_CHARACTERS: Final = "\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_NOT_XML: Final = re.compile(f"[{_NOT_XML_CHARACTERS}]")
_MARKUP_OR_NOT_XML: Final = re.compile(f"[{''.join(_XML_ESCAPES)}{_NOT_XML_CHARACTERS}]")

# A row's cells joined by (and framed in) a character that is neither whitespace nor markup (a
# private-use one): three searches then tell whether any cell needs `_xml_text` or `xml:space`
# (the separator inside a cell can only make a search match, sending the row down the careful
# path). Three simple patterns, because one alternation of them scans several times slower.
_SEPARATOR: Final = "\ue000"
_SPACE_AFTER: Final = re.compile(_SEPARATOR + r"\s")
_SPACE_BEFORE: Final = re.compile(r"\s" + _SEPARATOR)


def _plain(row: Sequence[str]) -> bool:
    """No cell of the row has markup, illegal characters, or space at either end."""
    text = _SEPARATOR + _SEPARATOR.join(row) + _SEPARATOR
    return not (
        _MARKUP_OR_NOT_XML.search(text) or _SPACE_AFTER.search(text) or _SPACE_BEFORE.search(text)
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


def _display_width(value: Cell) -> int:
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


def _xlsx_cell(sheet: Any, value: Cell) -> Any:
    """Blank for "", and text that would be read as a formula or an error kept as text."""
    if not isinstance(value, str):
        return value
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
