"""Exports: detail rows and day summaries on SQLite and PostgreSQL, read back from the CSV and
XLSX files `storage.sheets` writes."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from domain.clock import FixedClock
from domain.forms import load_form
from storage.db import SessionFactory
from storage.export import (
    DETAIL_COLUMNS,
    MAX_DAYS,
    TOTAL,
    AnswerCells,
    answer_text,
    export_days,
    export_rows,
    export_summary,
    place,
)
from storage.models import Excuse, Organisation
from storage.repo import Repo, Submission
from storage.schedules import ScheduleRepo
from storage.sheets import SUMMARY_HEADER, XLSX_MAX_ROWS, write_csv, write_xlsx
from tests.storage.seeding import seed_school

DAY = date(2026, 11, 28)
HOLIDAY = DAY + timedelta(days=1)
QUESTIONS = ["location", "temperature", "symptoms", "exposure", "photo"]
HEADER = [*DETAIL_COLUMNS, *QUESTIONS]

NORMAL = {
    "location": {"lat": 39.9042, "lon": 116.4074, "accuracy": 12.0, "live": True},
    "temperature": 36.5,
    "symptoms": ["none"],
    "exposure": {"yes": False, "detail": None},
    "photo": "AgACAgUAAxkBAAIBfile",
}
ABNORMAL = {
    "location": {"lat": 22.5431, "lon": 114.0579, "accuracy": None, "live": False},
    "temperature": 37.8,
    "symptoms": ["cough", "fatigue"],
    "exposure": {"yes": True, "detail": "11月25日途经深圳"},
    "photo": None,
}


@dataclass(frozen=True)
class Seeded:
    org_id: int
    engineering: int
    class_1: int
    class_2: int
    arts: int


async def seed(sessions: SessionFactory, clock: FixedClock) -> Seeded:
    """工程学院/一班: 1 reported normal (and again on the holiday), 2 reported abnormal,
    3 excused; 工程学院/二班: 4 missing and unreachable, 5 not enrolled; 文学院/甲班: 6 missing.
    The day after DAY is a holiday."""
    async with sessions() as session:
        repo = Repo(session)
        org, members = await seed_school(
            repo, now=clock.now(), order=("6", "5", "3", "1", "2", "4")
        )
        assert org.id is not None

        async def submit(
            external_id: str, day: date, at: datetime, answers: dict[str, Any], **fields: Any
        ) -> None:
            form = load_form("health")
            await repo.checkins.submit(
                member=members[external_id],
                local_day=day,
                form="health",
                form_version=form.version,
                submission=Submission(answers=answers, **fields),
                update_id=None,
                now=at,
            )

        await submit(
            "1",
            DAY,
            datetime(2026, 11, 28, 1, 5, 7, 654321, tzinfo=UTC),
            NORMAL,
            abnormal=False,
            reasons=[],
            latitude=39.9042,
            longitude=116.4074,
            province="北京市",
            city="北京市",
        )
        await submit(
            "2",
            DAY,
            datetime(2026, 11, 28, 1, 12, tzinfo=UTC),
            ABNORMAL,
            abnormal=True,
            reasons=["temperature", "symptoms", "exposure"],
            latitude=22.5431,
            longitude=114.0579,
            province="广东省",
            city="深圳市",
        )
        # Reported on the holiday: a check-in always counts. 23:30 UTC is the next local day.
        await submit(
            "1",
            HOLIDAY,
            datetime(2026, 11, 28, 23, 30, tzinfo=UTC),
            NORMAL,
            abnormal=False,
            reasons=[],
            latitude=39.9042,
            longitude=116.4074,
            province="北京市",
            city="北京市",
        )
        session.add(
            Excuse(
                org_id=org.id,
                member_id=members["3"].id or 0,
                first_day=DAY - timedelta(days=1),
                last_day=DAY,
                reason="病假",
                created_by="cli",
                created_at=clock.now(),
            )
        )
        members["4"].unreachable_since = clock.now()
        await ScheduleRepo(session).add_holidays(org_id=org.id, days=[HOLIDAY])
        units = {
            path: (await repo.units.require(org_id=org.id, name_path=path)).id or 0
            for path in ("工程学院", "工程学院/一班", "工程学院/二班", "文学院")
        }
        await session.commit()
        return Seeded(
            org_id=org.id,
            engineering=units["工程学院"],
            class_1=units["工程学院/一班"],
            class_2=units["工程学院/二班"],
            arts=units["文学院"],
        )


async def rows_of(
    sessions: SessionFactory,
    org_id: int,
    first: date = DAY,
    last: date = DAY,
    under: list[int] | None = None,
) -> tuple[list[str], list[list[str]]]:
    async with sessions() as session:
        org = await session.get(Organisation, org_id)
        assert org is not None
        return await export_rows(session, org=org, first=first, last=last, under=under)


async def summary_of(
    sessions: SessionFactory,
    org_id: int,
    first: date = DAY,
    last: date = DAY,
    under: list[int] | None = None,
) -> list[list[str | int | float]]:
    async with sessions() as session:
        org = await session.get(Organisation, org_id)
        assert org is not None
        return await export_summary(session, org=org, first=first, last=last, under=under)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")  # every line ends with \r\n, none bare
    return list(csv.reader(io.StringIO(text, newline="")))


def read_sheet(data: bytes, name: str) -> list[list[Any]]:
    book = load_workbook(io.BytesIO(data))
    return [list(row) for row in book[name].iter_rows(values_only=True)]


def blanks(rows: list[list[Any]]) -> list[list[Any]]:
    """XLSX leaves empty text cells blank; read them back as the CSV's empty strings."""
    return [["" if v is None else v for v in row] for row in rows]


EXPECTED_DAY = [
    [
        "2026-11-28",
        "工程学院/一班",
        "1",
        "甲",
        "reported",
        "2026-11-28T09:05:07+08:00",
        "39.9042",
        "116.4074",
        "北京市",
        "no",
        "",
        "39.90420, 116.40740",
        "36.5 °C",
        "以上都没有",
        "否",
        "已附照片",
    ],
    [
        "2026-11-28",
        "工程学院/一班",
        "2",
        "乙",
        "reported",
        "2026-11-28T09:12:00+08:00",
        "22.5431",
        "114.0579",
        "广东省 深圳市",
        "yes",
        "temperature;symptoms;exposure",
        "22.54310, 114.05790",
        "37.8 °C",
        "咳嗽、乏力",
        "是（11月25日途经深圳）",
        "",
    ],
    ["2026-11-28", "工程学院/一班", "3", "丙", "excused", *[""] * 11],
    ["2026-11-28", "工程学院/二班", "4", "丁", "missing", *[""] * 11],
    ["2026-11-28", "工程学院/二班", "5", "戊", "not_enrolled", *[""] * 11],
    ["2026-11-28", "文学院/甲班", "6", "己", "missing", *[""] * 11],
]


async def test_detail_rows_follow_the_contract(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    header, rows = await rows_of(sessions, seeded.org_id)
    assert header == HEADER
    assert rows == EXPECTED_DAY


async def test_csv_reads_back_with_bom_crlf_and_the_exact_rows(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    header, rows = await rows_of(sessions, seeded.org_id)
    data = write_csv(header, rows)
    assert data.startswith("\ufeffdate,unit_path,member_id,name,status,".encode())
    table = read_csv(data)
    assert table[0] == HEADER
    assert table[1:] == EXPECTED_DAY
    by_id = {row[2]: dict(zip(HEADER, row, strict=True)) for row in table[1:]}
    assert by_id["1"]["submitted_at"] == "2026-11-28T09:05:07+08:00"
    assert datetime.fromisoformat(by_id["2"]["submitted_at"]).utcoffset() == timedelta(hours=8)
    assert by_id["1"]["place"] == "北京市"
    assert (by_id["2"]["abnormal"], by_id["1"]["abnormal"], by_id["4"]["abnormal"]) == (
        "yes",
        "no",
        "",
    )
    assert by_id["2"]["reasons"].split(";") == ["temperature", "symptoms", "exposure"]
    assert {row["status"] for row in by_id.values()} == {
        "reported",
        "excused",
        "missing",
        "not_enrolled",
    }


async def test_xlsx_holds_the_same_rows_and_the_summary(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    header, rows = await rows_of(sessions, seeded.org_id)
    summary = await summary_of(sessions, seeded.org_id)
    data = write_xlsx(header, rows, summary)

    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Summary", "Detail"]
    detail = book["Detail"]
    assert detail.freeze_panes == "A2"
    assert detail.auto_filter.ref == "A1:P7"
    assert detail["A1"].font.b
    assert detail["E3"].value == "reported"
    assert detail["O3"].value == "是（11月25日途经深圳）"
    assert detail["C2"].data_type == "s"  # member ids stay text
    assert blanks(read_sheet(data, "Detail")) == read_csv(write_csv(header, rows))

    sheet = book["Summary"]
    assert sheet.freeze_panes == "A2"
    assert [c.value for c in sheet[1]] == list(SUMMARY_HEADER)
    assert all(c.font.b for c in sheet[1])
    assert sheet["B2"].value == "工程学院"
    assert sheet["E2"].number_format == "0.0%"
    assert sheet["E2"].value == pytest.approx(2 / 3, abs=1e-4)
    assert (sheet.column_dimensions["B"].width or 0) >= 10
    assert read_sheet(data, "Summary")[1:] == summary


async def test_summary_rows_per_unit_and_total(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    whole = await summary_of(sessions, seeded.org_id, last=HOLIDAY)
    assert whole == [
        ["2026-11-28", "工程学院", 3, 2, 0.6667, 1, 1, 1, 1, 1, 0],
        ["2026-11-28", "文学院", 1, 0, 0.0, 1, 0, 0, 0, 0, 0],
        ["2026-11-28", TOTAL, 4, 2, 0.5, 2, 1, 1, 1, 1, 0],
        # The holiday: days off count as excused; member 1 reported anyway, which is voluntary
        # (not expected, so no rate), while the detail shows their row as reported.
        ["2026-11-29", "工程学院", 0, 0, "", 0, 0, 3, 1, 0, 1],
        ["2026-11-29", "文学院", 0, 0, "", 0, 0, 1, 0, 0, 0],
        ["2026-11-29", TOTAL, 0, 0, "", 0, 0, 4, 1, 0, 1],
    ]
    college = await summary_of(sessions, seeded.org_id, under=[seeded.engineering])
    assert college == [
        ["2026-11-28", "工程学院/一班", 2, 2, 1.0, 0, 1, 1, 0, 0, 0],
        ["2026-11-28", "工程学院/二班", 1, 0, 0.0, 1, 0, 0, 1, 1, 0],
        ["2026-11-28", TOTAL, 3, 2, 0.6667, 1, 1, 1, 1, 1, 0],
    ]
    # A unit inside another one of the scope is not counted twice.
    nested = await summary_of(sessions, seeded.org_id, under=[seeded.class_1, seeded.engineering])
    assert nested == college


async def test_under_limits_rows_to_the_subtrees(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    _, class_2 = await rows_of(sessions, seeded.org_id, under=[seeded.class_2])
    assert [(r[1], r[2], r[4]) for r in class_2] == [
        ("工程学院/二班", "4", "missing"),
        ("工程学院/二班", "5", "not_enrolled"),
    ]
    _, mixed = await rows_of(sessions, seeded.org_id, under=[seeded.arts, seeded.class_1])
    assert [r[2] for r in mixed] == ["1", "2", "3", "6"]
    _, college = await rows_of(sessions, seeded.org_id, under=[seeded.engineering])
    assert [r[2] for r in college] == ["1", "2", "3", "4", "5"]
    _, nothing = await rows_of(sessions, seeded.org_id, under=[])
    assert nothing == []
    with pytest.raises(ValueError, match="not units of"):
        await rows_of(sessions, seeded.org_id, under=[seeded.class_1, 999_999])
    with pytest.raises(ValueError, match="not units of"):
        await summary_of(sessions, seeded.org_id, under=[999_999])


async def test_two_days_are_ordered_by_day_then_unit_then_member(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    _, rows = await rows_of(sessions, seeded.org_id, first=DAY, last=HOLIDAY)
    assert rows[:6] == EXPECTED_DAY
    assert [(r[0], r[1], r[2], r[4]) for r in rows[6:]] == [
        ("2026-11-29", "工程学院/一班", "1", "reported"),
        ("2026-11-29", "工程学院/一班", "2", "excused"),  # the holiday
        ("2026-11-29", "工程学院/一班", "3", "excused"),  # the holiday (the excuse has ended)
        ("2026-11-29", "工程学院/二班", "4", "excused"),
        ("2026-11-29", "工程学院/二班", "5", "not_enrolled"),
        ("2026-11-29", "文学院/甲班", "6", "excused"),
    ]
    holiday_report = rows[6]
    assert holiday_report[5] == "2026-11-29T07:30:00+08:00"
    assert holiday_report[9:16] == ["no", "", *EXPECTED_DAY[0][11:16]]
    keys = [(r[0], tuple(r[1].split("/")), r[2]) for r in rows]
    assert keys == sorted(keys)


async def test_ranges_are_limited_to_366_days(sessions: SessionFactory, clock: FixedClock) -> None:
    seeded = await seed(sessions, clock)
    assert len(export_days(DAY, DAY + timedelta(days=MAX_DAYS - 1))) == 366
    assert export_days(DAY, DAY) == [DAY]
    too_long = DAY + timedelta(days=MAX_DAYS)
    with pytest.raises(ValueError, match="at most 366 days"):
        await rows_of(sessions, seeded.org_id, last=too_long)
    with pytest.raises(ValueError, match="at most 366 days"):
        await summary_of(sessions, seeded.org_id, last=too_long)
    with pytest.raises(ValueError, match="before it starts"):
        await rows_of(sessions, seeded.org_id, first=HOLIDAY, last=DAY)


def test_place_and_answer_cells() -> None:
    assert place("北京市", "北京市") == "北京市"
    assert place("广东省", "深圳市") == "广东省 深圳市"
    assert place(None, "深圳市") == place("", "深圳市") == "深圳市"
    assert place(None, None) == ""
    form = load_form("health")
    symptoms, photo = form.question("symptoms"), form.question("photo")
    assert answer_text(symptoms, []) == ""
    assert answer_text(photo, None) == ""
    temperature, exposure = form.question("temperature"), form.question("exposure")
    assert answer_text(temperature, "36.5") == '"36.5"'  # unreadable: shown as JSON
    cells = AnswerCells()  # remembers, and keeps apart what formats differently
    for _ in range(2):
        assert cells(temperature, 36.5) == "36.5 °C"
        assert cells(temperature, "36.5") == '"36.5"'
        assert cells(exposure, {"yes": True, "detail": "a"}) == "是（a）"
        assert cells(exposure, {"yes": True, "detail": "b"}) == "是（b）"
        assert cells(exposure, {"yes": False, "detail": None}) == "否"
        assert cells(symptoms, ["cough"]) == "咳嗽"
        assert cells(symptoms, ["fever", "cough"]) == "发热、咳嗽"
        assert cells(symptoms, []) == ""


def test_files_keep_formula_like_text_inert() -> None:
    header = ["name", "latitude", "note"]
    rows = [['=HYPERLINK("http://x")', "-33.8688", "@SUM(A1)"], ["a,b", "", "x\ny"]]
    data = write_csv(header, rows)
    assert data.endswith(b'"a,b",,"x\ny"\r\n')
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert table == [
        header,
        ['\'=HYPERLINK("http://x")', "-33.8688", "'@SUM(A1)"],  # the number stays as it is
        ["a,b", "", "x\ny"],
    ]
    summary: list[list[str | int | float]] = [["2026-11-28", "=1+1", 0, 0, "", 0, 0, 0, 0, 0]]
    data = write_xlsx(header, rows, summary)
    book = load_workbook(io.BytesIO(data))
    detail = book["Detail"]
    assert detail["A2"].value == '=HYPERLINK("http://x")'
    assert detail["A2"].data_type == "s"
    assert blanks(read_sheet(data, "Detail")) == [header, *rows]
    assert (book["Summary"]["B2"].value, book["Summary"]["B2"].data_type) == ("=1+1", "s")
    assert book["Summary"]["E2"].value is None  # no rate when nobody was expected
    assert read_sheet(write_xlsx(header, [], []), "Summary") == [list(SUMMARY_HEADER)]
    with pytest.raises(ValueError, match="do not fit in a worksheet"):
        write_xlsx(header, [["x"]] * XLSX_MAX_ROWS, [])  # Excel's limit, with the header row


def test_xlsx_keeps_every_cell_exactly_across_chunks() -> None:
    """Rows that can be written as they are and rows that need care, interleaved, over more
    rows than one compressed chunk holds: each reads back exactly (blank cells blank)."""
    header = ["a", "b", "c", "d"]
    tricky = [
        [" leading", "trailing ", "\u3000全角", "x"],  # space at an end must survive
        ["<b>&amp;</b>", "a\rb", "bell\x07", ""],  # markup escaped, control character dropped
        ["", "mid\uffffdle", "\ufffe", "tab\tinside"],  # non-characters XML cannot carry
        ["\n", "a\u3000b", "sep\ue000 arator", "\ue000"],  # the row check's own separator
    ]
    rows = [
        tricky[i % 4] if i % 7 == 0 else [f"r{i}", "", "学院/班级", str(i)] for i in range(12_003)
    ]
    read = blanks(read_sheet(write_xlsx(header, rows, []), "Detail"))
    dropped = str.maketrans("", "", "\x07\ufffe\uffff")
    expected = [header, *([cell.translate(dropped) for cell in row] for row in rows)]
    assert read[0] == header
    assert len(read) == len(expected)
    for number, (got, want) in enumerate(zip(read, expected, strict=True), start=1):
        assert got[: len(want)] == want, f"row {number}"
