"""Exports: detail rows and day summaries on SQLite and PostgreSQL, read back from the CSV and
XLSX files `domain.present.sheets` writes."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import event

from domain.clock import FixedClock
from domain.forms import load_form
from domain.present import sheets
from domain.present.sheets import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    PERCENT,
    SUMMARY_HEADER,
    XLSX_MAX_ROWS,
    write_csv,
    write_xlsx,
)
from storage.db import SessionFactory
from storage.export import (
    DETAIL_COLUMNS,
    MAX_DAYS,
    TOTAL,
    AnswerCells,
    AnswerValues,
    answer_format,
    answer_text,
    export_days,
    export_rows,
    export_summary,
    place,
    write_export,
)
from storage.models import Excuse, Organisation
from storage.repo import Repo, Submission
from storage.schedules import ScheduleRepo
from tests.storage.seeding import check_in, seed_roster, seed_school

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
) -> list[list[sheets.Cell]]:
    async with sessions() as session:
        org = await session.get(Organisation, org_id)
        assert org is not None
        return await export_summary(session, org=org, first=first, last=last, under=under)


async def export_of(
    sessions: SessionFactory,
    org_id: int,
    *,
    language: str | None = None,
    raw: bool = False,
    as_csv: bool = False,
    first: date = DAY,
    last: date = DAY,
    under: list[int] | None = None,
) -> bytes:
    """The file `write_export` makes (as `daka export` and /export's maker call it), for the
    organisation speaking `language` (None: as stored)."""
    async with sessions() as session:
        org = await session.get(Organisation, org_id)
        assert org is not None
        if language is not None:
            org.language = language
        out = io.BytesIO()
        await write_export(
            session,
            org=org,
            first=first,
            last=last,
            under=under,
            as_csv=as_csv,
            raw=raw,
            out=out,
        )
        await session.rollback()
        return out.getvalue()


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


def as_read(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as openpyxl reads them back: a date is a datetime at midnight."""
    return [
        [
            datetime.combine(v, time())
            if isinstance(v, date) and not isinstance(v, datetime)
            else v
            for v in row
        ]
        for row in rows
    ]


def cells(data: bytes, name: str) -> list[list[tuple[Any, str, str]]]:
    """Every cell of a sheet as (value, data type, number format), what a spreadsheet shows."""
    book = load_workbook(io.BytesIO(data))
    return [
        [(c.value, c.data_type, c.number_format) for c in row] for row in book[name].iter_rows()
    ]


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
    assert sheet["A2"].value == datetime(2026, 11, 28)  # a date, shown as one
    assert (sheet["A2"].data_type, sheet["A2"].number_format) == ("d", DATE_FORMAT)
    assert read_sheet(data, "Summary")[1:] == as_read(summary)


TEMPERATURE = '0.0" °C"'  # the number format of the health form's temperature


async def test_the_xlsx_speaks_chinese_with_typed_cells(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """What a counselor of a Chinese-speaking organisation gets from /export or `daka export`:
    Chinese headers and words, and cells a spreadsheet sorts and filters as dates, times and
    numbers."""
    seeded = await seed(sessions, clock)
    data = await export_of(sessions, seeded.org_id, last=HOLIDAY)
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["汇总", "明细"]
    detail = cells(data, "明细")
    assert [v for v, _, _ in detail[0]] == [
        "日期",
        "单位",
        "学号/编号",
        "姓名",
        "状态",
        "提交时间",
        "纬度",
        "经度",
        "地点",
        "异常",
        "异常项",
        "位置",
        "体温",
        "症状",
        "接触史/行程",
        "照片",
    ]
    date_cell = (datetime(2026, 11, 28), "d", DATE_FORMAT)
    assert detail[1] == [
        date_cell,
        ("工程学院/一班", "s", "General"),
        ("1", "s", "General"),  # ids stay text
        ("甲", "s", "General"),
        ("已打卡", "s", "General"),
        (datetime(2026, 11, 28, 9, 5, 7), "d", DATETIME_FORMAT),  # local time, to the second
        (39.9042, "n", "General"),
        (116.4074, "n", "General"),
        ("北京市", "s", "General"),
        ("否", "s", "General"),
        (None, "n", "General"),
        ("39.90420, 116.40740", "s", "General"),
        (36.5, "n", TEMPERATURE),
        ("以上都没有", "s", "General"),
        ("否", "s", "General"),
        ("已附照片", "s", "General"),
    ]
    assert [v for v, _, _ in detail[2][9:16]] == [
        "是",
        "体温、症状、接触史/行程",
        "22.54310, 114.05790",
        37.8,
        "咳嗽、乏力",
        "是（11月25日途经深圳）",
        None,
    ]
    assert [(row[0], row[2][0], row[4][0]) for row in detail[3:7]] == [
        (date_cell, "3", "请假"),
        (date_cell, "4", "未打卡"),
        (date_cell, "5", "未加入"),
        (date_cell, "6", "未打卡"),
    ]
    assert all(v is None for row in detail[3:7] for v, _, _ in row[5:])
    # The holiday: a day off reads as one here (the machine contract says excused).
    assert [(row[2][0], row[4][0]) for row in detail[7:]] == [
        ("1", "已打卡"),
        ("2", "休息日"),
        ("3", "休息日"),
        ("4", "休息日"),
        ("5", "未加入"),
        ("6", "休息日"),
    ]
    assert detail[7][5][0] == datetime(2026, 11, 29, 7, 30)  # 23:30 UTC the day before
    assert book["明细"].auto_filter.ref == "A1:P13"

    summary = cells(data, "汇总")
    assert [v for v, _, _ in summary[0]] == [
        "日期",
        "单位",
        "应报",
        "已报",
        "打卡率",
        "未报",
        "异常",
        "请假/休息",
        "未加入",
        "联系不上",
        "休息日打卡",
        "已撤回同意",
    ]
    assert summary[1][:5] == [
        date_cell,
        ("工程学院", "s", "General"),
        (3, "n", "General"),
        (2, "n", "General"),
        (0.6667, "n", PERCENT),
    ]
    assert [row[1][0] for row in summary[1:]] == [
        *["工程学院", "工程学院/一班", "工程学院/二班", "文学院", "文学院/甲班", "合计"] * 2
    ]
    assert summary[12][0] == (datetime(2026, 11, 29), "d", DATE_FORMAT)
    assert summary[12][4] == (None, "n", "General")  # nobody expected: no rate


async def test_the_xlsx_speaks_english_for_an_english_organisation(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    data = await export_of(sessions, seeded.org_id, language="en")
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Summary", "Detail"]
    detail = read_sheet(data, "Detail")
    assert detail[0] == [
        "Date",
        "Unit",
        "Member ID",
        "Name",
        "Status",
        "Submitted at",
        "Latitude",
        "Longitude",
        "Place",
        "Abnormal",
        "Abnormal answers",
        "Location",
        "Temperature",
        "Symptoms",
        "Exposure/travel",
        "Photo",
    ]
    assert detail[1][4:] == [
        "checked in",
        datetime(2026, 11, 28, 9, 5, 7),
        39.9042,
        116.4074,
        "北京市",  # place names are as the map gives them
        "No",
        None,
        "39.90420, 116.40740",
        36.5,
        "None of these",
        "No",
        "photo attached",
    ]
    assert detail[2][9:15] == [
        "Yes",
        "Temperature, Symptoms, Exposure/travel",
        "22.54310, 114.05790",
        37.8,
        "Cough, Fatigue",
        "Yes (11月25日途经深圳)",
    ]
    assert [row[4] for row in detail[3:]] == [
        "excused",
        "not checked in",
        "not enrolled",
        "not checked in",
    ]
    summary = read_sheet(data, "Summary")
    assert summary[0] == [
        "Date",
        "Unit",
        "Expected",
        "Reported",
        "Rate",
        "Missing",
        "Abnormal",
        "Excused or day off",
        "Not enrolled",
        "Unreachable",
        "Checked in on a day off",
        "Withdrew consent",
    ]
    assert summary[-1][:4] == [datetime(2026, 11, 28), "Total", 4, 2]


async def test_raw_xlsx_keeps_the_machine_contract_in_typed_cells(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """`daka export --raw`: the CSV's headers, sheet names and codes, and what every cell says
    is what the CSV says, typed."""
    seeded = await seed(sessions, clock)
    for language in ("zh", "en"):
        data = await export_of(sessions, seeded.org_id, language=language, raw=True)
        book = load_workbook(io.BytesIO(data))
        assert book.sheetnames == ["Summary", "Detail"]
        detail = cells(data, "Detail")
        assert [v for v, _, _ in detail[0]] == HEADER
        assert detail[1][0] == (datetime(2026, 11, 28), "d", DATE_FORMAT)
        assert detail[1][5] == (datetime(2026, 11, 28, 9, 5, 7), "d", DATETIME_FORMAT)
        assert detail[1][6] == (39.9042, "n", "General")
        assert detail[1][12] == (36.5, "n", TEMPERATURE)
        assert [as_contract(row) for row in read_sheet(data, "Detail")[1:]] == EXPECTED_DAY
        summary = read_sheet(data, "Summary")
        assert summary[0] == list(SUMMARY_HEADER)
        assert summary[-1][:2] == [datetime(2026, 11, 28), TOTAL]


def as_contract(row: Sequence[Any]) -> list[str]:
    """A raw workbook's detail row back in the CSV's text (the health form's columns)."""
    day, _, _, _, _, submitted, lat, lon = row[:8]
    text: list[str] = [f"{day.date()}", *row[1:5]]
    text.append(f"{submitted.isoformat()}+08:00" if submitted else "")  # Asia/Shanghai
    text.extend("" if v is None else repr(v) for v in (lat, lon))
    text.extend("" if v is None else str(v) for v in row[8:12])
    temperature = row[12]
    text.append("" if temperature is None else f"{temperature:.1f} °C")
    text.extend("" if v is None else str(v) for v in row[13:])
    return text


async def test_the_csv_keeps_the_machine_contract_in_any_language(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """The CSV is what organisations' scripts read: the same bytes whatever the organisation's
    language, and `raw` changes nothing in it."""
    seeded = await seed(sessions, clock)
    header, rows = await rows_of(sessions, seeded.org_id)
    contract = write_csv(header, rows)
    for language in ("zh", "en"):
        for raw in (False, True):
            made = await export_of(
                sessions, seeded.org_id, language=language, raw=raw, as_csv=True
            )
            assert made == contract
    assert read_csv(contract)[0] == HEADER
    assert read_csv(contract)[1:] == EXPECTED_DAY


def test_typed_answers_and_their_formats() -> None:
    form = load_form("health")
    temperature, exposure = form.question("temperature"), form.question("exposure")
    assert answer_format(temperature) == TEMPERATURE
    assert answer_format(exposure) is None
    values = AnswerValues("zh")
    assert values(temperature, 36.5) == 36.5
    assert values(temperature, 37) == 37
    assert values(temperature, "36.5") == '"36.5"'  # unreadable: its JSON, as text
    nan = values(temperature, math.nan)  # no number a spreadsheet cannot hold: text
    assert nan == answer_text(temperature, math.nan)
    assert values(temperature, None) is None
    assert values(form.question("symptoms"), []) is None
    assert values(exposure, {"yes": True, "detail": "a"}) == "是（a）"
    assert AnswerValues("en")(exposure, {"yes": True, "detail": "a"}) == "Yes (a)"


async def test_summary_rows_per_unit_of_every_level_and_total(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    seeded = await seed(sessions, clock)
    whole = await summary_of(sessions, seeded.org_id, last=HOLIDAY)
    holiday = HOLIDAY
    assert whole == [
        [DAY, "工程学院", 3, 2, 0.6667, 1, 1, 1, 1, 1, 0, 0],
        [DAY, "工程学院/一班", 2, 2, 1.0, 0, 1, 1, 0, 0, 0, 0],
        [DAY, "工程学院/二班", 1, 0, 0.0, 1, 0, 0, 1, 1, 0, 0],
        [DAY, "文学院", 1, 0, 0.0, 1, 0, 0, 0, 0, 0, 0],
        [DAY, "文学院/甲班", 1, 0, 0.0, 1, 0, 0, 0, 0, 0, 0],
        [DAY, TOTAL, 4, 2, 0.5, 2, 1, 1, 1, 1, 0, 0],
        # The holiday: days off count as excused; member 1 reported anyway, which is voluntary
        # (not expected, so no rate), while the detail shows their row as reported.
        [holiday, "工程学院", 0, 0, None, 0, 0, 3, 1, 0, 1, 0],
        [holiday, "工程学院/一班", 0, 0, None, 0, 0, 2, 0, 0, 1, 0],
        [holiday, "工程学院/二班", 0, 0, None, 0, 0, 1, 1, 0, 0, 0],
        [holiday, "文学院", 0, 0, None, 0, 0, 1, 0, 0, 0, 0],
        [holiday, "文学院/甲班", 0, 0, None, 0, 0, 1, 0, 0, 0, 0],
        [holiday, TOTAL, 0, 0, None, 0, 0, 4, 1, 0, 1, 0],
    ]
    # A scope of one unit: the units under it, then the unit itself as the total.
    college = await summary_of(sessions, seeded.org_id, under=[seeded.engineering])
    assert college == [
        [DAY, "工程学院/一班", 2, 2, 1.0, 0, 1, 1, 0, 0, 0, 0],
        [DAY, "工程学院/二班", 1, 0, 0.0, 1, 0, 0, 1, 1, 0, 0],
        [DAY, TOTAL, 3, 2, 0.6667, 1, 1, 1, 1, 1, 0, 0],
    ]
    # A unit inside another one of the scope is not counted twice.
    nested = await summary_of(sessions, seeded.org_id, under=[seeded.class_1, seeded.engineering])
    assert nested == college
    # A scope of several units: each of them, with the units under it, in tree order.
    two = await summary_of(sessions, seeded.org_id, under=[seeded.arts, seeded.class_1])
    assert two == [
        [DAY, "工程学院/一班", 2, 2, 1.0, 0, 1, 1, 0, 0, 0, 0],
        [DAY, "文学院", 1, 0, 0.0, 1, 0, 0, 0, 0, 0, 0],
        [DAY, "文学院/甲班", 1, 0, 0.0, 1, 0, 0, 0, 0, 0, 0],
        [DAY, TOTAL, 3, 2, 0.6667, 1, 1, 1, 0, 0, 0, 0],
    ]
    leaf = await summary_of(sessions, seeded.org_id, under=[seeded.class_2])
    assert leaf == [[DAY, TOTAL, 1, 0, 0.0, 1, 0, 0, 1, 1, 0, 0]]


# Three levels, members on an inner unit as well as in classes: 11 reported, 12 missing,
# 21 reported abnormal, 31 (on the college itself) missing, 41 never enrolled, 42 reported.
UNIVERSITY = (
    ("大学/理学院/数学1班", "11", "甲"),
    ("大学/理学院/数学1班", "12", "乙"),
    ("大学/理学院/物理1班", "21", "丙"),
    ("大学/理学院", "31", "丁"),
    ("大学/文学院/中文1班", "41", "戊"),
    ("大学/文学院/中文1班", "42", "己"),
)


async def seed_university(sessions: SessionFactory, clock: FixedClock) -> tuple[int, int]:
    """The organisation's id and 理学院's."""
    async with sessions() as session:
        repo = Repo(session)
        org, members = await seed_roster(
            repo,
            name="大学",
            roster=UNIVERSITY,
            enrolled={m: clock.now() - timedelta(days=1) for _, m, _ in UNIVERSITY if m != "41"},
            now=clock.now(),
        )
        for external_id, abnormal in (("11", False), ("21", True), ("42", False)):
            await check_in(
                repo, member=members[external_id], day=DAY, abnormal=abnormal, now=clock.now()
            )
        assert org.id is not None
        science = await repo.units.require(org_id=org.id, name_path="大学/理学院")
        await session.commit()
        assert science.id is not None
        return org.id, science.id


async def test_summary_rolls_up_every_level_of_a_deeper_tree(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org_id, science = await seed_university(sessions, clock)
    whole = await summary_of(sessions, org_id)
    assert whole == [
        [DAY, "大学", 5, 3, 0.6, 2, 1, 0, 1, 0, 0, 0],
        [DAY, "大学/文学院", 1, 1, 1.0, 0, 0, 0, 1, 0, 0, 0],
        [DAY, "大学/文学院/中文1班", 1, 1, 1.0, 0, 0, 0, 1, 0, 0, 0],
        [DAY, "大学/理学院", 4, 2, 0.5, 2, 1, 0, 0, 0, 0, 0],  # 31 counts here, in no class
        [DAY, "大学/理学院/数学1班", 2, 1, 0.5, 1, 0, 0, 0, 0, 0, 0],
        [DAY, "大学/理学院/物理1班", 1, 1, 1.0, 0, 1, 0, 0, 0, 0, 0],
        [DAY, TOTAL, 5, 3, 0.6, 2, 1, 0, 1, 0, 0, 0],
    ]
    paths = [str(row[1]) for row in whole[:-1]]
    for at, path in enumerate(paths):  # a parent comes before its children
        parent = path.rpartition("/")[0]
        assert not parent or parent in paths[:at]
    assert await summary_of(sessions, org_id, under=[science]) == [
        [DAY, "大学/理学院/数学1班", 2, 1, 0.5, 1, 0, 0, 0, 0, 0, 0],
        [DAY, "大学/理学院/物理1班", 1, 1, 1.0, 0, 1, 0, 0, 0, 0, 0],
        [DAY, TOTAL, 4, 2, 0.5, 2, 1, 0, 0, 0, 0, 0],
    ]


async def test_the_summary_is_one_figures_query_per_day_whatever_the_units(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    """Set-based: every unit's roll-up of a day is one GROUP BY over the closure table, not a
    query per unit."""
    org_id, _ = await seed_university(sessions, clock)

    async def statements(days: int) -> list[str]:
        seen: list[str] = []
        async with sessions() as session:
            org = await session.get(Organisation, org_id)
            assert org is not None
            connection = (await session.connection()).sync_connection
            assert connection is not None

            def record(*args: Any) -> None:
                seen.append(str(args[2]))

            event.listen(connection, "before_cursor_execute", record)
            try:
                await export_summary(
                    session, org=org, first=DAY, last=DAY + timedelta(days=days - 1), under=None
                )
            finally:
                event.remove(connection, "before_cursor_execute", record)
        return seen

    one, three = await statements(1), await statements(3)
    assert len(three) == len(one) + 2
    assert sum("GROUP BY" in sql for sql in one) == 1


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


def test_xlsx_keeps_typed_cells_exactly_across_chunks() -> None:
    """Numbers (0 too, which is no blank), dates, times, yes/no and blanks beside text, over
    more rows than one compressed chunk holds: each reads back as it was written, in its
    column's number format."""
    header = ["day", "at", "n", "text", "flag"]
    formats = [DATE_FORMAT, DATETIME_FORMAT, TEMPERATURE]
    start = datetime(2026, 11, 28, 8, 0, 0)
    rows: list[list[sheets.Cell]] = []
    for i in range(12_003):
        at = start + timedelta(seconds=37 * i)
        if i % 5 == 0:
            rows.append([at.date(), None, 0.0, "", False])
        elif i % 7 == 0:
            rows.append([at.date(), at, -1.5e-7, " spaced ", True])
        else:
            rows.append([at.date(), at, 35 + i % 70 / 10, f"r{i}", None])
    data = write_xlsx(header, rows, [], formats=formats)
    read = cells(data, "Detail")
    assert len(read) == len(rows) + 1
    for number, (got, want) in enumerate(zip(read[1:], rows, strict=True), start=2):
        day, moment, value, text, flag = want
        assert got[0] == (datetime.combine(cast_date(day), time()), "d", DATE_FORMAT), number
        assert got[1] == ((moment, "d", DATETIME_FORMAT) if moment else (None, "n", "General")), (
            number
        )
        assert got[2] == (value, "n", TEMPERATURE), number
        assert got[3][0] == (text or None), number
        assert got[4][:2] == ((flag, "b") if flag is not None else (None, "n")), number


def cast_date(value: Any) -> date:
    assert isinstance(value, date)
    return value


async def test_the_export_is_the_same_workbook_without_the_splice(
    sessions: SessionFactory, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The faster writer `bot.shims` installs (tests/conftest.py imports bot) and openpyxl's
    own write the same cells of a real export (bot/shims/test_xlsx_splice.py: of odd cells)."""
    assert sheets._faster is not None
    seeded = await seed(sessions, clock)
    spliced = await export_of(sessions, seeded.org_id, last=HOLIDAY)
    monkeypatch.setattr(sheets, "_faster", None)
    stock = await export_of(sessions, seeded.org_id, last=HOLIDAY)
    for sheet in ("汇总", "明细"):
        assert cells(stock, sheet) == cells(spliced, sheet)
