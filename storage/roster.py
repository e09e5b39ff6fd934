"""Reading roster files (CSV in UTF-8 with or without BOM, or XLSX) into checked rows."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from storage.repos.members import RosterRow
from storage.repos.units import split_unit_path

HEADERS = {
    "unit": "unit",
    "单位": "unit",
    "班级": "unit",
    "member_id": "member_id",
    "id": "member_id",
    "学号": "member_id",
    "编号": "member_id",
    "name": "name",
    "姓名": "name",
}
MAX_ID = 64
MAX_NAME = 200


class RosterFileError(ValueError):
    """The file as a whole cannot be read (format, encoding, header)."""


@dataclass
class RosterParse:
    """Good rows and, per bad line, what is wrong with it."""

    rows: list[RosterRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _clean(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return unicodedata.normalize("NFC", str(value)).strip()


def _csv_lines(data: bytes) -> Iterator[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterFileError("the CSV file is not UTF-8 (save it as 'CSV UTF-8')") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise RosterFileError(f"line {reader.line_num}: {exc}") from None


def _xlsx_lines(data: bytes) -> Iterator[tuple[int, list[str]]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (BadZipFile, KeyError, ValueError, OSError):
        raise RosterFileError("the file is not a readable .xlsx workbook") from None
    try:
        sheet = book.worksheets[0]
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, [_clean(v) for v in values]
    finally:
        book.close()


def parse_roster(data: bytes, filename: str) -> RosterParse:
    """Check every line; the caller decides whether any error rejects the whole file."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        lines = _csv_lines(data)
    elif suffix == ".xlsx":
        lines = _xlsx_lines(data)
    else:
        raise RosterFileError("a roster must be a .csv or .xlsx file")
    result = RosterParse()
    columns: dict[str, int] | None = None
    seen: dict[str, int] = {}
    for number, raw in lines:
        values = [_clean(v) for v in raw]
        if not any(values):
            continue
        if columns is None:
            columns = {}
            for index, title in enumerate(values):
                key = HEADERS.get(title.lower())
                if key is not None and key not in columns:
                    columns[key] = index
            missing = [k for k in ("unit", "member_id", "name") if k not in columns]
            if missing:
                raise RosterFileError(
                    "the header row must name the columns unit, member_id, name "
                    f"(missing: {', '.join(missing)})"
                )
            continue
        cells = {k: values[i] if i < len(values) else "" for k, i in columns.items()}
        problem = _row_problem(cells, seen)
        if problem:
            result.errors.append((number, problem))
            continue
        seen[cells["member_id"]] = number
        unit = "/".join(split_unit_path(cells["unit"]))
        result.rows.append(
            RosterRow(line=number, unit=unit, member_id=cells["member_id"], name=cells["name"])
        )
    if columns is None:
        raise RosterFileError("the file is empty")
    return result


def _row_problem(cells: dict[str, str], seen: dict[str, int]) -> str | None:
    for key in ("unit", "member_id", "name"):
        if not cells[key]:
            return f"{key} is empty"
    if len(cells["member_id"]) > MAX_ID:
        return f"member_id is longer than {MAX_ID} characters"
    if len(cells["name"]) > MAX_NAME:
        return f"name is longer than {MAX_NAME} characters"
    try:
        split_unit_path(cells["unit"])
    except ValueError:
        return f"unit {cells['unit']!r} has an empty name between '/'"
    if cells["member_id"] in seen:
        return f"member_id {cells['member_id']} already appears on line {seen[cells['member_id']]}"
    return None
