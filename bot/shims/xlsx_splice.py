"""The XLSX row splice: an export's detail rows written straight into the zip openpyxl laid out.

openpyxl's own serialiser (without lxml, which Daka does not install) needs about 12 s for 100,000
rows of 16 cells; `XlsxOut` lets openpyxl lay the workbook out (`storage.sheets.laid_out`: both
sheets, the summary whole, the detail's header), then writes the detail rows itself as the same
inline-string cells openpyxl writes, into that sheet of openpyxl's zip: about 1.2 s. It relies on
how openpyxl 3.1 saves a write-only workbook (the sheet found through `xl/workbook.xml` and its
relationships, one `</sheetData>` to write before): `SHIM` checks it on a small workbook the
first time one is made; when it steps aside `storage.sheets.OpenpyxlOut` writes the same cells.
`bot.shims.install` hands `spliced_out` to `storage.sheets.use_xlsx_writer`."""

from __future__ import annotations

import io
import re
import zipfile
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from typing import BinaryIO, Final
from xml.etree import ElementTree

from bot.shims.compat import Shim
from storage.sheets import (
    DETAIL,
    NOT_XML_CHARACTERS,
    XLSX_MAX_ROWS,
    Cell,
    column_letter,
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
    `xl/workbook.xml` and its relationships, with one `</sheetData>` to write before."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    book.create_sheet(DETAIL).append(["x"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as saved:
        part = _sheet_part(saved, DETAIL)
        if saved.read(part).decode("utf-8").count("</sheetData>") != 1:
            return [f"openpyxl's {part} has no single </sheetData>"]
    return []


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
    header: Sequence[str],
    summary: Sequence[Sequence[Cell]],
    sample: Sequence[Sequence[str]],
) -> XlsxOut | None:
    """`storage.sheets.xlsx_out`'s faster writer, or None when `SHIM` steps aside."""
    return XlsxOut(out, header, summary, sample) if _allowed() else None


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
        self._part = _sheet_part(self._source, DETAIL)
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
            raise ValueError(too_many(self._next - 2 + len(rows)))
        width = max((len(row) for row in rows), default=0)
        while len(self._letters) < width:
            self._letters.append(column_letter(len(self._letters) + 1))
        for chunk in _rows_xml(rows, self._next, self._letters, self._templates):
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


def _layout(
    header: Sequence[str], summary: Sequence[Sequence[Cell]], sample: Sequence[Sequence[str]]
) -> bytes:
    """The workbook without detail rows: the summary sheet whole, the detail sheet's header."""
    book, _detail = laid_out(header, summary, sample)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


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


_NOT_XML: Final = re.compile(f"[{NOT_XML_CHARACTERS}]")
_MARKUP_OR_NOT_XML: Final = re.compile(f"[{''.join(_XML_ESCAPES)}{NOT_XML_CHARACTERS}]")

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
