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

The CSV and XLSX files that carry them are written by `storage.sheets`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from datetime import date, timedelta, tzinfo
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import day_end
from domain.forms import Question, load_form
from domain.status import DayStatus, Figures
from storage.aggregates import MemberDay, collector_paused, member_days, total, unit_figures
from storage.db import core_rows, create_engine
from storage.models import Member, Organisation, Unit, UnitLink
from storage.schedules import plan
from storage.sheets import WIDTH_SAMPLE, Cell, CsvOut, XlsxWriter, xlsx_out

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
    under: Sequence[int] | None,
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
    under: Sequence[int] | None,
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
    exposures repeat, and formatting each of 100,000 rows' answers again would cost a second.
    What a cell depends on is the kind's to say (`Kind.cell_key`; None: not worth remembering,
    like a location, unique per member)."""

    def __init__(self) -> None:
        self._known: dict[Hashable, str] = {}

    def __call__(self, q: Question, value: object) -> str:
        if value is None:
            return ""
        key = q.kind_of.cell_key(q, value)
        if key is None:
            return answer_text(q, value)
        text = self._known.get(key)
        if text is None:
            text = self._known[key] = answer_text(q, value)
        return text


def answer_text(q: Question, value: object) -> str:
    """An answer as a spreadsheet cell (`Kind.cell`): readable, and empty when there is nothing
    to read."""
    if value is None or value == "":
        return ""
    try:
        return q.kind_of.cell(q, value)
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
) -> list[list[Cell]]:
    """Per day: a row for each direct child unit of the scope (each root unit for the whole
    organisation), then the scope's `total` row. Rows follow `storage.sheets.SUMMARY_HEADER`."""
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
    under: Sequence[int] | None,
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
        if len(sample) >= WIDTH_SAMPLE:
            break
    sheet: CsvOut | XlsxWriter
    if as_csv:
        sheet = CsvOut(out, header)
    else:
        summary = await export_summary(session, org=org, first=first, last=last, under=under)
        sheet = xlsx_out(out, header, summary, sample[:WIDTH_SAMPLE])
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
    `args`: org (id), first and last (ISO days), under (unit ids or None), format."""
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
                    out=out,
                )
    finally:
        await engine.dispose()
