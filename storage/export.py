"""Check-in exports for organisers: a detail table (one row per member per local day) and a day
summary per unit, read from the database and written into a file (`write_export`; `make_export`
in a process of its own).

The detail columns are a contract organisations build on, in this order::

    date, unit_path, member_id, name, status, submitted_at, latitude, longitude, place,
    abnormal, reasons, <one column per question of the organisation's form, headed by its id>

- ``date``: the local day, ISO (``2026-11-28``).
- ``unit_path``: the unit names from the root joined with ``/``.
- ``member_id``: the roster id the organisation imported (``Member.external_id``), not the
  database key.
- ``status``: ``reported``, ``missing``, ``excused``, ``not_enrolled`` or ``withdrawn``. A day
  off (a holiday, a weekday the unit's schedule does not count) is exported as ``excused``: the
  member was not expected, just as with an excuse. ``withdrawn``: the member had withdrawn
  their consent by that day (not expected, never reminded). A check-in always wins: who
  reported on a day off is ``reported`` (the summary counts them as ``voluntary``), and so is
  who checked in on the day they withdrew.
- ``submitted_at``: when the current version of the check-in arrived, ISO 8601 to the second
  with the organisation's UTC offset (``2026-11-28T09:12:00+08:00``); empty when not reported.
- ``latitude``, ``longitude``: as stored, shortest exact decimal; empty when not reported or
  sent without a location.
- ``place``: province and city joined by a space, the city left out when it repeats the
  province (the municipalities: ``北京市``, not ``北京市 北京市``).
- ``abnormal``: ``yes`` or ``no``; ``reasons``: the ids of the abnormal questions joined with
  ``;``. Both are empty when the member did not report, so "no" always means "reported, and
  nothing abnormal".
- question columns hold what a person reads (the kind's `cell`: its `format`, in Chinese), because
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
abnormal, excused, not_enrolled, unreachable, voluntary, withdrawn``, for every unit below the
scope in tree order (a unit before the units under it, siblings by name; the unit path shows
the depth): every unit of the organisation for the whole organisation, every unit under it for
a scope of one unit, and for a scope of several units those units and every unit under them. A
``total`` row for the whole scope follows. Each row rolls up the unit's whole subtree (one GROUP
BY over the unit closure table per day, `storage.aggregates.tree_figures`). The figures follow
"How figures are counted" in docs/operations.md: ``expected`` is reported + missing; members of a
unit on its day off are not expected, and their check-ins are counted as ``voluntary``, outside
``expected``, ``reported`` and ``rate`` (so the detail's ``reported`` rows are the summary's
reported + voluntary); ``abnormal`` counts every abnormal check-in, voluntary ones included.
``rate`` is reported / expected as a fraction rounded to 4 decimals (the XLSX shows it as a
percentage), empty when nobody was expected; ``excused`` counts days off too, as in the detail;
``unreachable`` counts the missing whom the bot cannot message; ``withdrawn`` those who had
withdrawn their consent (not expected either).

The CSV is that contract, as text (`export_rows`). The XLSX holds the same rows with typed
cells, so that a spreadsheet sorts and filters them (`detail_chunks(..., typed=words)`): the
days are dates, ``submitted_at`` a date and time in the organisation's time zone (to the
second, as the CSV's text), ``latitude``, ``longitude`` and the answers of number questions
numbers (shown with the question's decimals and unit), the rate a percentage; an empty cell is
blank. Its words (`domain.present.words.Words`) are the organisation's language (zh or en):
headers, sheet names, status words (a day off reads as a day off there, not as ``excused``),
yes and no, the question labels as headers and in ``reasons``, the answers, and the total row;
or, with ``raw`` (`daka export --raw`), the machine contract's, as in the CSV.

The CSV and XLSX files that carry them are written by `domain.present.sheets`.

One module past 400 lines: the contract above, the rows and the summary that follow it are
read together.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, BinaryIO, Final, cast
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import day_end
from domain.forms import Lang, Question, load_form, normalize_lang
from domain.present.sheets import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    WIDTH_SAMPLE,
    Cell,
    CsvOut,
    Layout,
    XlsxWriter,
    xlsx_out,
)
from domain.present.words import ANSWER_LANG, DETAIL_COLUMNS, MACHINE, TOTAL, Words, words_for
from domain.status import DayStatus, Figures
from storage.aggregates import MemberDay, collector_paused, member_days, total, tree_figures
from storage.db import core_rows, create_engine
from storage.models import Member, Organisation, Unit, UnitLink
from storage.schedules import plan

__all__ = ["ANSWER_LANG", "DETAIL_COLUMNS", "MACHINE", "TOTAL", "Words", "words_for"]

MAX_DAYS: Final = 366

_STATUS: Final[Mapping[DayStatus, str]] = MACHINE.status


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


def detail_header(org: Organisation, words: Words = MACHINE) -> list[str]:
    return words.header(load_form(org.form).questions)


def detail_layout(org: Organisation, words: Words = MACHINE) -> Layout:
    """The XLSX's sheets, headers and the detail columns' number formats, in `words`."""
    questions = load_form(org.form).questions
    fixed: dict[str, str] = {"date": DATE_FORMAT, "submitted_at": DATETIME_FORMAT}
    return Layout(
        header=words.header(questions),
        formats=[
            *(fixed.get(column) for column in DETAIL_COLUMNS),
            *(answer_format(q) for q in questions),
        ],
        summary_header=words.summary,
        sheets=words.sheets,
    )


async def export_rows(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None,
) -> tuple[list[str], list[list[str]]]:
    """The detail header and rows of the contract, as the CSV's text: every active roster entry
    under `under` (unit ids, their subtrees included; None for the whole organisation) on every
    local day of [first, last]."""
    chunks = detail_chunks(session, org=org, first=first, last=last, under=under)
    rows = [cast(list[str], row) async for chunk in chunks for row in chunk]
    return detail_header(org), rows


async def detail_chunks(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None,
    size: int = CHUNK_ROWS,
    typed: Words | None = None,
) -> AsyncIterator[list[list[Cell]]]:
    """`export_rows`' rows in their order, a few thousand at a time: the units of the scope in
    path order are read in groups of about `size` members, each group sorted here, so that an
    export of 100,000 members never holds them all (hundreds of MiB). With `typed`, the XLSX's
    typed cells in those words (`typed_row`) rather than the CSV's text."""
    assert org.id is not None
    days = export_days(first, last)
    groups = await _unit_groups(session, org, under, size)
    questions = load_form(org.form).questions
    zone = ZoneInfo(org.timezone)
    org_plan = await plan(session, org)
    paths: dict[str, tuple[str, ...]] = {}
    make: Callable[[Any, MemberDay], list[Cell]]
    if typed is None:
        cells = AnswerCells()

        def make(day: str, m: MemberDay) -> list[Cell]:
            return cast(list[Cell], detail_row(day, m, questions, zone, cells))

    else:
        make = TypedRows(questions, zone, typed)
    for day in days:
        day_cell: Any = day if typed else day.isoformat()
        off_units = org_plan.off_units(day)
        for group in groups:
            entries = await member_days(
                session,
                org_id=org.id,
                day=day,
                under=None,  # the group's units are the scope's already
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
                rows = [make(day_cell, m) for m in entries]
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
    """One member's day in the contract's columns, as the CSV's text."""
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


class TypedRows:
    """One member's day in the contract's columns as the XLSX's typed cells, in `words`: the
    day a date, `submitted_at` the organisation's wall-clock time to the second, coordinates
    and number answers numbers, the rest text; None for an empty cell."""

    def __init__(self, questions: Sequence[Question], zone: tzinfo, words: Words) -> None:
        self._questions = questions
        self._zone = zone
        self._words = words
        self._reasons = words.reasons(questions)
        self._answers = AnswerValues(words.answer_lang)
        self._blank: list[Cell] = [None] * (len(DETAIL_COLUMNS) - 5 + len(questions))

    def __call__(self, day: date, m: MemberDay) -> list[Cell]:
        words = self._words
        head: list[Cell] = [day, m.unit_path, m.external_id, m.name, words.status[m.status]]
        if m.status is not DayStatus.REPORTED:
            return head + self._blank
        answers = m.answers or {}
        cell = self._answers
        return [
            *head,
            _wall_clock(m.submitted_at, self._zone),
            None if m.latitude is None else float(m.latitude),
            None if m.longitude is None else float(m.longitude),
            place(m.province, m.city) or None,
            words.yes if m.abnormal else words.no,
            self._reasons(m.reasons) or None,
            *(cell(q, answers.get(q.id)) for q in self._questions),
        ]


def _wall_clock(moment: datetime | None, zone: tzinfo) -> datetime | None:
    """The organisation's local time of `moment`, to the second, without a zone (Excel has
    none): what the CSV's ISO text says before its offset."""
    if moment is None:
        return None
    return moment.astimezone(zone).replace(tzinfo=None, microsecond=0)


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
    exposures repeat, and formatting each of 100,000 rows' answers again would cost a second.
    What a cell depends on is the kind's to say (`Kind.cell_key`; None: not worth remembering,
    like a location, unique per member)."""

    def __init__(self, lang: str = ANSWER_LANG) -> None:
        self._lang = normalize_lang(lang)
        self._known: dict[Hashable, str] = {}

    def __call__(self, q: Question, value: object) -> str:
        if value is None:
            return ""
        key = q.kind_of.cell_key(q, value)
        if key is None:
            return _answer_cell(q, value, self._lang)
        text = self._known.get(key)
        if text is None:
            text = self._known[key] = _answer_cell(q, value, self._lang)
        return text


class AnswerValues:
    """An answer as the XLSX's typed cell: a number question's (finite) answer as that number,
    shown in the question's format (`answer_format`); any other as `AnswerCells`' text, None
    when empty."""

    def __init__(self, lang: str = ANSWER_LANG) -> None:
        self._text = AnswerCells(lang)

    def __call__(self, q: Question, value: object) -> Cell:
        if q.kind == "number":
            of = type(value)
            if (of is float or of is int) and math.isfinite(cast(float, value)):
                return cast(float, value)
        return self._text(q, value) or None


def answer_format(q: Question) -> str | None:
    """The number format of a question's column in the XLSX: a number question's decimals and
    unit, as `answer_text` writes them (``0.0" °C"``); None for the other kinds (text)."""
    if q.kind != "number":
        return None
    digits = "0." + "0" * q.decimals if q.decimals else "0"
    if q.unit and not any(c in q.unit for c in '"\\'):
        return f'{digits}" {q.unit}"'
    return digits


def answer_text(q: Question, value: object, lang: str = ANSWER_LANG) -> str:
    """An answer as a spreadsheet cell (`Kind.cell`, in `lang`): readable, and empty when there
    is nothing to read."""
    return _answer_cell(q, value, normalize_lang(lang))


def _answer_cell(q: Question, value: object, lang: Lang) -> str:
    if value is None or value == "":
        return ""
    try:
        return q.kind_of.cell(q, value, lang)
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
    under: Sequence[int] | None,
    total_name: str = TOTAL,
) -> list[list[Cell]]:
    """Per day: a row for each unit below the scope in tree order (`_summary_units`), then the
    scope's total row, named `total_name`. Rows follow `domain.present.sheets.SUMMARY_HEADER`;
    the day is a date, the rate None when nobody was expected. One figures query per day for all
    the rows."""
    assert org.id is not None
    days = export_days(first, last)
    units, tops = await _summary_units(session, org, under)
    listed = {u.id for u in units}
    org_plan = await plan(session, org)
    asked = [*units, *(t for t in tops if t.id not in listed)]
    rows: list[list[Cell]] = []
    for day in days:
        figures = await tree_figures(
            session,
            tops=tops,
            units=asked,
            day=day,
            off_units=org_plan.off_units(day),
            enrolled_by=day_end(day, org.timezone),
        )
        of_unit = {f.unit_id: f for f in figures}
        for unit in units:
            rows.append(summary_row(day, unit.name_path, of_unit[unit.id]))
        rows.append(summary_row(day, total_name, total(total_name, [of_unit[t.id] for t in tops])))
    return rows


async def _summary_units(
    session: AsyncSession, org: Organisation, under: Sequence[int] | None
) -> tuple[list[Unit], list[Unit]]:
    """The summary's units in tree order, and the scope's top units, whose sum is the total:
    for the whole organisation every unit (the tops are its root units); for one unit the
    units under it; for several units those units and the units under them."""
    if under is None:
        stmt = select(Unit).where(col(Unit.org_id) == org.id)
        units = _tree_order((await session.exec(stmt)).all())
        return units, [u for u in units if u.parent_id is None]
    tops = _outermost(await _scope_units(session, org, under))
    ids = [u.id for u in tops if u.id is not None]
    if not ids:
        return [], []
    below = (
        select(Unit)
        .join(UnitLink, col(UnitLink.descendant_id) == col(Unit.id))
        .where(col(UnitLink.ancestor_id).in_(ids))
    )
    if len(ids) == 1:
        below = below.where(col(UnitLink.depth) > 0)
    return _tree_order((await session.exec(below)).all()), tops


def _tree_order(units: Sequence[Unit]) -> list[Unit]:
    """A unit before the units under it, siblings by name: the order of the name paths
    compared name by name."""
    return sorted(units, key=lambda u: _path_key(u.name_path))


def summary_row(day: date, unit_path: str, f: Figures) -> list[Cell]:
    rate = f.rate
    return [
        day,
        unit_path,
        f.expected,
        f.reported,
        None if rate is None else round(rate, 4),
        f.missing,
        f.abnormal,
        f.excused + f.off,
        f.not_enrolled,
        f.unreachable,
        f.voluntary,
        f.withdrawn,
    ]


def _outermost(units: Sequence[Unit]) -> list[Unit]:
    """Drop units that lie under another given unit, so that totals count nobody twice."""
    paths = [u.path for u in units]
    return [u for u in units if not any(u.path != p and u.path.startswith(p) for p in paths)]


# --------------------------------------------------------------------------------------------
# The file


async def write_export(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None,
    as_csv: bool = False,
    raw: bool = False,
    out: BinaryIO,
) -> int:
    """The export as CSV or XLSX, written into `out` a chunk of rows at a time; returns the
    number of detail rows. The XLSX speaks the organisation's language, or with `raw` the
    machine contract's words, as the CSV always does.

    The cyclic garbage collector is held off throughout, not only while each chunk is built:
    re-enabled after every chunk it walked the kept rows and the heap again, 1.1 s of CPU for
    100,000 rows. The rows die by reference counting; only cycles wait for the end. Run it
    where nothing else runs on the event loop (a worker's own, a command's)."""
    with collector_paused():
        return await _write_export(
            session,
            org=org,
            first=first,
            last=last,
            under=under,
            as_csv=as_csv,
            raw=raw,
            out=out,
        )


async def _write_export(
    session: AsyncSession,
    *,
    org: Organisation,
    first: date,
    last: date,
    under: Sequence[int] | None,
    as_csv: bool,
    raw: bool,
    out: BinaryIO,
) -> int:
    words = None if as_csv else MACHINE if raw else words_for(org.language)
    chunks = detail_chunks(session, org=org, first=first, last=last, under=under, typed=words)
    sample: list[list[Cell]] = []  # the XLSX's column widths come from the first rows
    async for chunk in chunks:
        sample.extend(chunk)
        if len(sample) >= WIDTH_SAMPLE:
            break
    sheet: CsvOut | XlsxWriter
    if words is None:
        sheet = CsvOut(out, detail_header(org))
    else:
        summary = await export_summary(
            session, org=org, first=first, last=last, under=under, total_name=words.total
        )
        sheet = xlsx_out(out, detail_layout(org, words), summary, sample[:WIDTH_SAMPLE])
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
    loop of its own: for the process the bot makes its uploads in (`handlers.telegram.uploads`),
    so that the bot's loop goes on answering.
    `args`: org (id), first and last (ISO days), under (unit ids or None), format, and raw
    (optional: the machine contract's words in an XLSX)."""
    return asyncio.run(_make_export(url, args, path))


async def _make_export(url: str, args: Mapping[str, Any], path: str) -> int:
    engine = create_engine(url, pooled=False)
    try:
        async with AsyncSession(engine) as session:
            org = await session.get(Organisation, int(args["org"]))
            if org is None:
                raise ValueError(f"no organisation {args['org']}")
            under = args["under"]  # None, said explicitly: the whole organisation
            # This event loop is the maker's own: blocking it holds up nobody.
            with open(path, "wb") as out:  # noqa: ASYNC230
                return await write_export(
                    session,
                    org=org,
                    first=date.fromisoformat(str(args["first"])),
                    last=date.fromisoformat(str(args["last"])),
                    under=None if under is None else [int(u) for u in under],
                    as_csv=args.get("format") == "csv",
                    raw=bool(args.get("raw", False)),
                    out=out,
                )
    finally:
        await engine.dispose()
