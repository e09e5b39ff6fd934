"""Check-in exports for organisers: a detail table (one row per member per local day), a day
summary per unit, and the CSV and XLSX files that carry them.

The detail columns are a contract organisations build on, in this order::

    date, unit_path, member_id, name, status, submitted_at, latitude, longitude, place,
    abnormal, reasons, <one column per question of the organisation's form, headed by its id>

- ``date``: the local day, ISO (``2026-11-28``).
- ``unit_path``: the unit names from the root joined with ``/``.
- ``member_id``: the roster id the organisation imported (``Member.external_id``), not the
  database key.
- ``status``: ``reported``, ``missing``, ``excused`` or ``not_enrolled``. A day off (a holiday,
  a weekday the unit's schedule does not count) is exported as ``excused``: the member was not
  expected, just as with an excuse. A check-in always wins: who reported on a day off is
  ``reported`` (the summary counts them as ``voluntary``).
- ``submitted_at``: when the current version of the check-in arrived, ISO 8601 to the second
  with the organisation's UTC offset (``2026-11-28T09:12:00+08:00``); empty when not reported.
- ``latitude``, ``longitude``: as stored, shortest exact decimal; empty when not reported or
  sent without a location.
- ``place``: province and city joined by a space, the city left out when it repeats the
  province (the municipalities: ``北京市``, not ``北京市 北京市``).
- ``abnormal``: ``yes`` or ``no``; ``reasons``: the ids of the abnormal questions joined with
  ``;``. Both are empty when the member did not report, so "no" always means "reported, and
  nothing abnormal".
- question columns hold what a person reads (`domain.forms.format_answer`, in Chinese), because
  a spreadsheet user filters and reads them rather than parses them: ``36.8 °C``, ``咳嗽、乏力``,
  ``是（12月1日 途经…）``, ``已附照片`` (a Telegram file id means nothing outside the chat), and a
  location as ``lat, lon`` (5 decimals; the exact values are in ``latitude``/``longitude``).
  A skipped question, an empty multiple choice, a question the member's form version did not
  have, and every question of a member who did not report are an empty cell rather than
  ``未填``, so that spreadsheet filters on blanks work and "not answered" does not read as an
  answer. A stored value the current form cannot read (a question whose kind changed) is shown
  as its JSON rather than failing the whole export.

Rows are ordered by date, unit path (compared name by name, the same on every database
collation) and member id (as text).

The summary has one row per unit per day, ``date, unit_path, expected, reported, rate, missing,
abnormal, excused, not_enrolled, unreachable, voluntary``, for the scope's direct child units
(the organisation's root units for the whole organisation), followed by a ``total`` row for the
whole scope (a scope unit without child units has only that row). The figures follow "How
figures are counted" in docs/operations.md: ``expected`` is reported + missing; members of a
unit on its day off are not expected, and their check-ins are counted as ``voluntary``, outside
``expected``, ``reported`` and ``rate`` (so the detail's ``reported`` rows are the summary's
reported + voluntary); ``abnormal`` counts every abnormal check-in, voluntary ones included.
``rate`` is reported / expected as a fraction rounded to 4 decimals (the XLSX shows it as a
percentage), empty when nobody was expected; ``excused`` counts days off too, as in the detail;
``unreachable`` counts the missing whom the bot cannot message.

Files: CSV is UTF-8 with a BOM (Excel otherwise reads the Chinese as the local code page) and
``\\r\\n`` line ends. A text cell that a spreadsheet would run as a formula (it starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, and is not a number) gets a leading ``'`` in
the CSV, since members type free text. The XLSX has a ``Summary`` and a ``Detail`` sheet; its
detail cells are all text (so ids like ``00123`` keep their zeros) and formula-like text is
stored as text, never as a formula.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import re
import unicodedata
import zipfile
from collections import deque
from collections.abc import (
    AsyncIterator,
    Callable,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta, tzinfo
from functools import cache
from typing import Any, BinaryIO, Final, cast
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import day_end
from domain.forms import Question, format_answer, load_form
from domain.status import DayStatus, Figures
from storage.aggregates import MemberDay, collector_paused, member_days, total, unit_figures
from storage.compat import Shim
from storage.db import core_rows, create_engine
from storage.models import Member, Organisation, Unit, UnitLink
from storage.schedules import plan

DETAIL_COLUMNS: Final[tuple[str, ...]] = (
    "date",
    "unit_path",
    "member_id",
    "name",
    "status",
    "submitted_at",
    "latitude",
    "longitude",
    "place",
    "abnormal",
    "reasons",
)
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
TOTAL: Final = "total"  # the unit_path of the summary's total row
MAX_DAYS: Final = 366
ANSWER_LANG: Final = "zh"

_STATUS: Final[Mapping[DayStatus, str]] = {
    DayStatus.REPORTED: "reported",
    DayStatus.MISSING: "missing",
    DayStatus.EXCUSED: "excused",
    DayStatus.NOT_ENROLLED: "not_enrolled",
    DayStatus.OFF: "excused",  # a holiday or day off: not expected, like an excuse
}

Cell = str | int | float


# --------------------------------------------------------------------------------------------
# Rows


def export_days(first: date, last: date) -> list[date]:
    """The local days of an export, both ends included; at most `MAX_DAYS`."""
    if last < first:
        raise ValueError(f"the export ends ({last}) before it starts ({first})")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ValueError(f"an export covers at most {MAX_DAYS} days, not {count}")
    return [first + timedelta(days=i) for i in range(count)]


CHUNK_ROWS: Final = 5_000  # detail rows read, formatted and written at a time


def detail_header(org: Organisation) -> list[str]:
    return [*DETAIL_COLUMNS, *(q.id for q in load_form(org.form).questions)]


async def export_rows(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """The detail header and rows: every active roster entry under `under` (unit ids, their
    subtrees included; None for the whole organisation) on every local day of [first, last]."""
    chunks = detail_chunks(session, org=org, first=first, last=last, under=under)
    return detail_header(org), [row async for chunk in chunks for row in chunk]


async def detail_chunks(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None = None,
    size: int = CHUNK_ROWS,
) -> AsyncIterator[list[list[str]]]:
    """`export_rows`' rows in their order, a few thousand at a time: the units of the scope in
    path order are read in groups of about `size` members, each group sorted here, so that an
    export of 100,000 members never holds them all (hundreds of MiB)."""
    assert org.id is not None
    days = export_days(first, last)
    groups = await _unit_groups(session, org, under, size)
    questions = load_form(org.form).questions
    zone = ZoneInfo(org.timezone)
    org_plan = await plan(session, org)
    cells = AnswerCells()
    paths: dict[str, tuple[str, ...]] = {}
    for day in days:
        iso_day = day.isoformat()
        off_units = org_plan.off_units(day)
        for group in groups:
            entries = await member_days(
                session,
                org_id=org.id,
                day=day,
                unit_ids=group,
                off_units=off_units,
                enrolled_by=day_end(day, org.timezone),
            )
            # Sorting and formatting thousands of rows allocate tens of thousands of tuples
            # and lists, all kept until written: without the pause, collections walk them
            # again and again.
            with collector_paused():
                entries.sort(
                    key=lambda m: (
                        paths.get(m.unit_path)
                        or paths.setdefault(m.unit_path, _path_key(m.unit_path)),
                        m.external_id,
                    )
                )
                rows = [detail_row(iso_day, m, questions, zone, cells) for m in entries]
            if rows:
                yield rows


async def _unit_groups(
    session: AsyncSession, org: Organisation, under: Sequence[int] | None, size: int
) -> list[list[int]]:
    """The ids of the scope's units that have active members, in path order (name by name),
    in consecutive groups of about `size` members (a bigger unit is a group of its own)."""
    stmt = (
        select(col(Member.unit_id), col(Unit.name_path), func.count())
        .join(Unit, col(Unit.id) == col(Member.unit_id))
        .where(col(Member.org_id) == org.id, col(Member.active))
        .group_by(col(Member.unit_id), col(Unit.name_path))
    )
    if under is not None:
        scope = [u.id or 0 for u in await _scope_units(session, org, under)]
        stmt = stmt.where(
            col(Member.unit_id).in_(
                select(col(UnitLink.descendant_id)).where(col(UnitLink.ancestor_id).in_(scope))
            )
        )
    units = sorted(await core_rows(session, stmt), key=lambda u: _path_key(u[1]))
    groups: list[list[int]] = []
    members = size
    for unit_id, _path, count in units:
        if members + count > size:
            groups.append([])
            members = 0
        groups[-1].append(unit_id)
        members += count
    return groups


def detail_row(
    day: str,
    m: MemberDay,
    questions: Sequence[Question],
    zone: tzinfo,
    cells: Callable[[Question, object], str] | None = None,
) -> list[str]:
    """One member's day in the contract's columns."""
    head = [day, m.unit_path, m.external_id, m.name, _STATUS[m.status]]
    if m.status is not DayStatus.REPORTED:
        return [*head, *([""] * (len(DETAIL_COLUMNS) - len(head) + len(questions)))]
    answers = m.answers or {}
    cell = cells or answer_text
    return [
        *head,
        m.submitted_at.astimezone(zone).isoformat(timespec="seconds") if m.submitted_at else "",
        _coordinate(m.latitude),
        _coordinate(m.longitude),
        place(m.province, m.city),
        "yes" if m.abnormal else "no",
        ";".join(m.reasons),
        *(cell(q, answers.get(q.id)) for q in questions),
    ]


def place(province: str | None, city: str | None) -> str:
    """Province and city for people: `北京市` once, `广东省 深圳市`."""
    parts: list[str] = []
    for part in (province, city):
        text = (part or "").strip()
        if text and text not in parts:
            parts.append(text)
    return " ".join(parts)


class AnswerCells:
    """`answer_text`, remembered across an export: a roster's temperatures, symptoms and
    exposures repeat, and formatting each of 100,000 rows' answers again would cost a second."""

    def __init__(self) -> None:
        self._known: dict[Hashable, str] = {}

    def __call__(self, q: Question, value: object) -> str:
        if value is None:
            return ""
        if q.kind == "location" and type(value) is dict:
            # Unique per member, so not worth remembering; this is `answer_text`'s "lat, lon"
            # without its checks and copies, for the common well-formed answer.
            lat, lon = value.get("lat"), value.get("lon")
            if type(lat) is float and type(lon) is float and math.isfinite(lat + lon):
                return f"{lat:.5f}, {lon:.5f}"
        key = _answer_key(q, value)
        if key is None:
            return answer_text(q, value)
        text = self._known.get(key)
        if text is None:
            text = self._known[key] = answer_text(q, value)
        return text


def _answer_key(q: Question, value: object) -> Hashable | None:
    """What a cell depends on, for the kinds whose answers repeat; None: do not remember."""
    kind, of = q.kind, type(value)
    if of is str or of is float or of is int:
        return (q.id, of, value) if kind == "number" or kind == "choice" else None
    if of is list:
        if kind == "multi" and all(type(i) is str for i in cast(list[object], value)):
            return (q.id, tuple(cast(list[str], value)))
        return None
    if of is dict and kind == "yesno":
        answer = cast(dict[str, object], value)
        yes, detail = answer.get("yes"), answer.get("detail")
        if (
            type(yes) is bool
            and (detail is None or type(detail) is str)
            and len(answer) == ("yes" in answer) + ("detail" in answer)
        ):
            return (q.id, yes, detail)
    return None


def answer_text(q: Question, value: object) -> str:
    """An answer as a spreadsheet cell: readable, and empty when there is nothing to read."""
    if value is None or value == "" or (q.kind == "multi" and value == []):
        return ""
    if q.kind == "location" and isinstance(value, Mapping):
        value = {**value, "live": False}  # the contract's "lat, lon", without "(实时)"
    try:
        return format_answer(q, value, ANSWER_LANG)
    except (TypeError, ValueError, KeyError):
        # An old answer the current form reads differently: show it, do not fail the export.
        return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _coordinate(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _path_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


async def _scope_units(
    session: AsyncSession, org: Organisation, under: Sequence[int]
) -> list[Unit]:
    """The units named by `under`, refusing ids of another organisation (or of nothing)."""
    wanted = set(under)
    if not wanted:
        return []
    stmt = select(Unit).where(col(Unit.id).in_(wanted), col(Unit.org_id) == org.id)
    units = list((await session.exec(stmt)).all())
    unknown = wanted - {u.id for u in units}
    if unknown:
        raise ValueError(f"not units of {org.slug!r}: {sorted(unknown)}")
    return sorted(units, key=lambda u: _path_key(u.name_path))


# --------------------------------------------------------------------------------------------
# Summary


async def export_summary(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None = None,
) -> list[list[Cell]]:
    """Per day: a row for each direct child unit of the scope (each root unit for the whole
    organisation), then the scope's `total` row. Rows follow `SUMMARY_HEADER`."""
    assert org.id is not None
    days = export_days(first, last)
    if under is None:
        stmt = select(Unit).where(col(Unit.org_id) == org.id, col(Unit.parent_id).is_(None))
        tops = sorted((await session.exec(stmt)).all(), key=lambda u: _path_key(u.name_path))
        parts: list[Unit] = tops
    else:
        tops = _outermost(await _scope_units(session, org, under))
        parts = await _children(session, tops)
    org_plan = await plan(session, org)
    # The rows' units and the scope's top units, in one query per day.
    units = parts if under is None else [*parts, *tops]
    rows: list[list[Cell]] = []
    for day in days:
        figures = await unit_figures(
            session,
            units=units,
            day=day,
            off_units=org_plan.off_units(day),
            enrolled_by=day_end(day, org.timezone),
        )
        iso_day = day.isoformat()
        part_figures = figures[: len(parts)]
        top_figures = figures if under is None else figures[len(parts) :]
        for unit, f in zip(parts, part_figures, strict=True):
            rows.append(summary_row(iso_day, unit.name_path, f))
        rows.append(summary_row(iso_day, TOTAL, total(TOTAL, top_figures)))
    return rows


def summary_row(day: str, unit_path: str, f: Figures) -> list[Cell]:
    rate = f.rate
    return [
        day,
        unit_path,
        f.expected,
        f.reported,
        "" if rate is None else round(rate, 4),
        f.missing,
        f.abnormal,
        f.excused + f.off,
        f.not_enrolled,
        f.unreachable,
        f.voluntary,
    ]


def _outermost(units: Sequence[Unit]) -> list[Unit]:
    """Drop units that lie under another given unit, so that totals count nobody twice."""
    paths = [u.path for u in units]
    return [u for u in units if not any(u.path != p and u.path.startswith(p) for p in paths)]


async def _children(session: AsyncSession, parents: Sequence[Unit]) -> list[Unit]:
    ids = [u.id for u in parents if u.id is not None]
    if not ids:
        return []
    stmt = select(Unit).where(col(Unit.parent_id).in_(ids))
    return sorted((await session.exec(stmt)).all(), key=lambda u: _path_key(u.name_path))


# --------------------------------------------------------------------------------------------
# The file


async def write_export(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None = None,
    as_csv: bool = False,
    out: BinaryIO,
) -> int:
    """The export as CSV or XLSX, written into `out` a chunk of rows at a time; returns the
    number of detail rows.

    The cyclic garbage collector is held off throughout, not only while each chunk is built:
    re-enabled after every chunk it walked the kept rows and the heap again, 1.1 s of CPU for
    100,000 rows. The rows die by reference counting; only cycles wait for the end. Run it
    where nothing else runs on the event loop (a worker's own, a command's)."""
    with collector_paused():
        return await _write_export(
            session, org=org, first=first, last=last, under=under, as_csv=as_csv, out=out
        )


async def _write_export(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None,
    as_csv: bool,
    out: BinaryIO,
) -> int:
    header = detail_header(org)
    chunks = detail_chunks(session, org=org, first=first, last=last, under=under)
    sample: list[list[str]] = []  # the XLSX's column widths come from the first rows
    async for chunk in chunks:
        sample.extend(chunk)
        if len(sample) >= _WIDTH_SAMPLE:
            break
    sheet: CsvOut | XlsxOut | OpenpyxlOut
    if as_csv:
        sheet = CsvOut(out, header)
    else:
        summary = await export_summary(session, org=org, first=first, last=last, under=under)
        sheet = xlsx_out(out, header, summary, sample[:_WIDTH_SAMPLE])
    rows = len(sample)
    with sheet:
        sheet.write(sample)
        del sample
        async for chunk in chunks:
            sheet.write(chunk)
            rows += len(chunk)
    return rows


def make_export(url: str, args: Mapping[str, Any], path: str) -> int:
    """`write_export` into the file `path`, on a connection of its own to `url`, on an event
    loop of its own: for the process the bot makes its uploads in (`bot.replies`), so that the
    bot's loop goes on answering.
    `args`: org (id), first and last (ISO days), under (unit ids or None), format."""
    return asyncio.run(_make_export(url, args, path))


async def _make_export(url: str, args: Mapping[str, Any], path: str) -> int:
    engine = create_engine(url, pooled=False)
    try:
        async with AsyncSession(engine) as session:
            org = await session.get(Organisation, int(args["org"]))
            if org is None:
                raise ValueError(f"no organisation {args['org']}")
            under = args.get("under")
            # This event loop is the maker's own: blocking it holds up nobody.
            with open(path, "wb") as out:  # noqa: ASYNC230
                return await write_export(
                    session,
                    org=org,
                    first=date.fromisoformat(str(args["first"])),
                    last=date.fromisoformat(str(args["last"])),
                    under=None if under is None else [int(u) for u in under],
                    as_csv=args.get("format") == "csv",
                    out=out,
                )
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------------------------
# Files

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
_WIDTH_SAMPLE: Final = 500
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
    with xlsx_out(out, header, summary, rows[:_WIDTH_SAMPLE]) as book:
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
    name="XLSX row splice (storage/export.py)",
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
        sample = (row[index] for row in rows[:_WIDTH_SAMPLE] if index < len(row))
        width = max([_display_width(name), *(_display_width(v) for v in sample)])
        sheet.column_dimensions[_column_letter(index + 1)].width = min(width + 2, _MAX_WIDTH)


def _column_letter(number: int) -> str:
    """A column's letters: 1 is A, 27 is AA (openpyxl's `get_column_letter`, which this module
    does not import: a handler checks an export's days here without loading openpyxl)."""
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
