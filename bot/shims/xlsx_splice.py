"""The XLSX row splice: an export's detail rows written straight into the zip openpyxl laid out.

openpyxl's own serialiser (without lxml, which Daka does not install) needs about 12 s for 100,000
rows of 16 cells; `XlsxOut` lets openpyxl lay the workbook out (`domain.present.sheets.laid_out`:
both sheets, the summary whole, the detail's header), then writes the detail rows itself as the
same cells openpyxl writes (`domain.present.sheets.typed_cell`: inline strings, numbers, booleans,
dates as serial numbers with the style openpyxl registered for their number format), into that
sheet of openpyxl's zip: about 1.2 s. It relies on how openpyxl 3.1 saves a write-only workbook
(the sheet found through `xl/workbook.xml` and its relationships, one `</sheetData>` to write
before, a cell's `style_id` naming its `cellXfs` entry): `SHIM` checks it on a small workbook the
first time one is made; when it steps aside `domain.present.sheets.OpenpyxlOut` writes the same
cells. `bot.shims.install` hands `spliced_out` to `domain.present.sheets.use_xlsx_writer`.

One module a little past 400 lines: the check, the writer and the XML it writes must match
cell for cell, and are read side by side."""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from operator import itemgetter
from typing import Any, BinaryIO, Final
from xml.etree import ElementTree

from bot.shims.compat import Shim
from domain.present.sheets import (
    NOT_XML_CHARACTERS,
    SHEETS,
    XLSX_MAX_ROWS,
    Cell,
    Layout,
    column_letter,
    formatted_cell,
    laid_out,
    too_many,
)

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

    detail = SHEETS[1]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(detail)
    probe = formatted_cell(sheet, 1.5, '0.0" probe"')
    style = probe.style_id
    sheet.append(["x"])
    buffer = io.BytesIO()
    book.save(buffer)
    problems = []
    with zipfile.ZipFile(buffer) as saved:
        part = _sheet_part(saved, detail)
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


SHIM = Shim(
    name="XLSX row splice (bot/shims/xlsx_splice.py)",
    written_for={"openpyxl": "3.1"},
    probe=_openpyxl_layout,
    buys="an export's detail rows written into openpyxl's zip directly, ten times faster",
)


@cache
def _allowed() -> bool:
    """Checked once per process, at the first workbook; when it steps aside openpyxl writes
    the rows, ten times slower."""
    return SHIM.enabled()


def spliced_out(
    out: BinaryIO,
    layout: Layout,
    summary: Sequence[Sequence[Cell]],
    sample: Sequence[Sequence[Cell]],
) -> XlsxOut | None:
    """`domain.present.sheets.xlsx_out`'s faster writer, or None when `SHIM` steps aside."""
    return XlsxOut(out, layout, summary, sample) if _allowed() else None


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


def _registered(sheet: Any, layout: Layout) -> _Styles:
    """The styles of the detail's number formats, registered with the workbook before it is
    saved, so that they are in its styles.xml (a date cell without a format gets openpyxl's)."""
    from openpyxl.cell import WriteOnlyCell

    return _Styles(
        columns=[
            "" if f is None else f' s="{formatted_cell(sheet, 0, f).style_id}"'
            for f in layout.formats
        ],
        date=f' s="{WriteOnlyCell(sheet, value=date(2000, 1, 1)).style_id}"',
        datetime=f' s="{WriteOnlyCell(sheet, value=datetime(2000, 1, 1)).style_id}"',
    )


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
        book, sheet = laid_out(layout, summary, sample)
        self._styles = _registered(sheet, layout)
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
            raise ValueError(too_many(self._next - 2 + len(rows)))
        width = max((len(row) for row in rows), default=0)
        while len(self._letters) < width:
            self._letters.append(column_letter(len(self._letters) + 1))
        for chunk in _rows_xml(rows, self._next, self._letters, self._styles, self._shapes):
            self._put(chunk)
        self._next += len(rows)

    def __enter__(self) -> XlsxOut:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                last = column_letter(max(len(self._header), 1))
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


_NOT_XML: Final = re.compile(f"[{NOT_XML_CHARACTERS}]")
_MARKUP_OR_NOT_XML: Final = re.compile(f"[{''.join(_XML_ESCAPES)}{NOT_XML_CHARACTERS}]")

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
