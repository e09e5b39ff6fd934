"""The trend chart: day-by-day figures on SQLite and PostgreSQL, and a PNG that decodes, drawn
with a font that has Chinese glyphs."""

from __future__ import annotations

import io
import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from matplotlib.axes import Axes
from PIL import Image

from domain.clock import FixedClock
from domain.status import Figures
from storage.charts import (
    CJK_FAMILY,
    MAX_DAYS,
    PROBE,
    cjk_family,
    cjk_font_path,
    render_trend,
    trend_figure,
    trend_series,
)
from storage.db import SessionFactory
from storage.models import Organisation
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from tests.storage.seeding import check_in, create_org, seed_roster

LAST = date(2026, 11, 28)
FIRST = LAST - timedelta(days=4)  # 11-24 … 11-28
HOLIDAY = date(2026, 11, 25)
LONG_AGO = datetime(2026, 11, 1, tzinfo=UTC)
LATE_ENROLMENT = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai on 11-26
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Who checks in on which day, and whether abnormally.
CHECKINS = {
    date(2026, 11, 24): {"1": False, "2": True},
    HOLIDAY: {"3": True},  # on the holiday, of their own accord, and abnormal
    date(2026, 11, 26): {"1": False, "2": False, "3": True, "4": True},
    date(2026, 11, 28): {"4": True},
}


async def seed(sessions: SessionFactory, clock: FixedClock) -> Organisation:
    """工程学院/一班: 1, 2; 工程学院/二班: 3 (all enrolled long ago); 文学院/甲班: 4 (enrolled on
    11-26); 11-25 is a holiday."""
    async with sessions() as session:
        repo = Repo(session)
        roster = [
            ("工程学院/一班", "1", "甲"),
            ("工程学院/一班", "2", "乙"),
            ("工程学院/二班", "3", "丙"),
            ("文学院/甲班", "4", "丁"),
        ]
        org, members = await seed_roster(
            repo,
            name="第一中学",
            roster=roster,
            enrolled={m: LATE_ENROLMENT if m == "4" else LONG_AGO for _, m, _ in roster},
            now=clock.now(),
        )
        assert org.id is not None
        for day, who in CHECKINS.items():
            for external_id, abnormal in who.items():
                await check_in(
                    repo, member=members[external_id], day=day, abnormal=abnormal, now=clock.now()
                )
        await ScheduleRepo(session).add_holidays(org_id=org.id, days=[HOLIDAY])
        await session.commit()
        return org


def rows(series: list[tuple[date, Figures]]) -> list[tuple[str, int, int, float | None, int]]:
    return [(f"{day:%m-%d}", f.expected, f.reported, f.rate, f.abnormal) for day, f in series]


async def test_the_whole_organisation_day_by_day(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    org = await seed(sessions, clock)
    async with sessions() as session:
        series = await trend_series(session, org=org, under=None, last=LAST, days=5)
    assert [day for day, _ in series] == [FIRST + timedelta(days=i) for i in range(5)]
    assert rows(series) == [
        ("11-24", 3, 2, 2 / 3, 1),  # 4 had not enrolled yet
        ("11-25", 0, 0, None, 1),  # the holiday: nobody expected, no rate; 3's alert counts
        ("11-26", 4, 4, 1.0, 2),  # 4 enrolled that morning and reported
        ("11-27", 4, 0, 0.0, 0),
        ("11-28", 4, 1, 0.25, 1),
    ]
    assert {f.name for _, f in series} == {"第一中学"}
    holiday = series[1][1]
    assert (holiday.off, holiday.voluntary, holiday.not_enrolled) == (2, 1, 1)


async def test_one_unit_with_its_subtree(sessions: SessionFactory, clock: FixedClock) -> None:
    org = await seed(sessions, clock)
    assert org.id is not None
    async with sessions() as session:
        units = Repo(session).units
        college = await units.require(org_id=org.id, name_path="工程学院")
        one = await units.require(org_id=org.id, name_path="工程学院/一班")
        arts = await units.require(org_id=org.id, name_path="文学院")
        by_college = await trend_series(
            session, org=org, under=[college.id or 0], last=LAST, days=5
        )
        by_class = await trend_series(session, org=org, under=[one.id or 0], last=LAST, days=5)
        by_arts = await trend_series(session, org=org, under=[arts.id or 0], last=LAST, days=2)
        # A manager of both: the union, day by day
        both = await trend_series(
            session, org=org, under=[one.id or 0, arts.id or 0], last=LAST, days=2
        )
    assert rows(by_college) == [
        ("11-24", 3, 2, 2 / 3, 1),
        ("11-25", 0, 0, None, 1),
        ("11-26", 3, 3, 1.0, 1),
        ("11-27", 3, 0, 0.0, 0),
        ("11-28", 3, 0, 0.0, 0),
    ]
    assert [f.rate for _, f in by_class] == [1.0, None, 1.0, 0.0, 0.0]
    assert [f.abnormal for _, f in by_class] == [1, 0, 0, 0, 0]
    assert {f.name for _, f in by_class} == {"一班"}
    assert rows(by_arts) == [("11-27", 1, 0, 0.0, 0), ("11-28", 1, 1, 1.0, 1)]
    class_rows = rows(by_class)[-2:]
    assert [(d, e, r, a) for d, e, r, _, a in rows(both)] == [
        (d, e + ea, r + ra, a + aa)
        for (d, e, r, _, a), (_, ea, ra, _, aa) in zip(class_rows, rows(by_arts), strict=True)
    ]
    assert {f.name for _, f in both} == {"第一中学"}


async def test_days_and_units_are_checked(sessions: SessionFactory, clock: FixedClock) -> None:
    org = await seed(sessions, clock)
    async with sessions() as session:
        repo = Repo(session)
        other = await create_org(repo, slug="other", name="第二中学", now=clock.now())
        foreign = await repo.units.ensure(org_id=other.id or 0, name_path="某班")
        for days in (0, MAX_DAYS + 1):
            with pytest.raises(ValueError):
                await trend_series(session, org=org, under=None, last=LAST, days=days)
        with pytest.raises(ValueError):
            await trend_series(session, org=org, under=[foreign.id or 0], last=LAST, days=3)
        longest = await trend_series(session, org=org, under=None, last=LAST, days=MAX_DAYS)
    assert len(longest) == MAX_DAYS and longest[-1][0] == LAST
    assert longest[0][0] == LAST - timedelta(days=MAX_DAYS - 1)


def day_figures(day: date, expected: int, reported: int, abnormal: int) -> tuple[date, Figures]:
    return day, Figures(
        unit_id=None,
        name="第一中学",
        roster=expected,
        reported=reported,
        missing=expected - reported,
        abnormal=abnormal,
    )


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png))
    image.load()  # decodes every pixel: a truncated or corrupt file raises here
    assert image.format == "PNG"
    return image


def test_charts_draw_chinese_with_the_font_the_package_depends_on() -> None:
    """Without a CJK font, Chinese unit names are drawn as empty boxes. The font comes from a
    Python dependency (noto-cjk-sans-otc), not from the system: matplotlib finds the family in
    that package's file, and the face there has every glyph the chart writes."""
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    assert cjk_family() == CJK_FAMILY
    found = findfont(FontProperties(family=CJK_FAMILY), fallback_to_default=False)
    assert found.path == str(cjk_font_path())
    font = FT2Font(found.path, face_index=found.face_index)
    assert font.family_name == CJK_FAMILY
    assert all(font.get_char_index(ord(c)) for c in PROBE + "工程学院/一班：最近天%0123456789")


@pytest.mark.parametrize("days", [1, 14, MAX_DAYS])
def test_render_trend_gives_a_png(days: int) -> None:
    series = [
        day_figures(LAST - timedelta(days=days - 1 - i), 40, 30 + i % 10, i % 4)
        for i in range(days)
    ]
    png = render_trend(
        series,
        title="第一中学 / 工程学院/一班：最近 14 天",
        rate_label="打卡率",
        abnormal_label="异常人数",
    )
    image = decode(png)
    width, height = image.size
    assert 800 <= width <= 2000 and 400 <= height <= 1200 and width > height
    assert image.mode in ("RGB", "RGBA")
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 10  # not a blank canvas


def test_days_nobody_was_expected_are_gaps() -> None:
    """All-holiday weeks and a day with a '$' in the title (no mathtext) still draw."""
    holidays = [day_figures(LAST - timedelta(days=i), 0, 0, 0) for i in range(7, 0, -1)]
    gaps = [
        day_figures(LAST - timedelta(days=2), 10, 5, 1),
        day_figures(LAST - timedelta(days=1), 0, 0, 0),
        day_figures(LAST, 10, 10, 0),
    ]
    for series in (holidays, gaps):
        decode(render_trend(series, title="$x_1$ 班 100%", rate_label="率", abnormal_label="异常"))
    with pytest.raises(ValueError):
        render_trend([], title="", rate_label="", abnormal_label="")


def a_month() -> list[tuple[date, Figures]]:
    """30 days of a class of 48 that is off at weekends (a member sometimes checks in anyway),
    with abnormal check-ins of 1, 3, 12 and 1 on four school days and 1 on a Saturday."""
    abnormal = {date(2026, 11, 2): 1, date(2026, 11, 9): 3, date(2026, 11, 16): 12}
    abnormal |= {date(2026, 11, 26): 1, date(2026, 11, 14): 1}
    series = []
    for i in range(30):
        day = LAST - timedelta(days=29 - i)
        if day.weekday() >= 5:
            figures = Figures(
                unit_id=None,
                name="一班",
                roster=48,
                off=47,
                voluntary=1,
                abnormal=abnormal.get(day, 0),
            )
        else:
            figures = day_figures(day, 48, 40 + i % 9, abnormal.get(day, 0))[1]
        series.append((day, figures))
    return series


def bar_heights(axes: Axes) -> list[float]:
    return [patch.get_height() for container in axes.containers for patch in container]


def test_abnormal_counts_have_their_own_axis_in_whole_numbers() -> None:
    """Regression (issue 16): the counts were bars on a twin axis scaled to twice the largest,
    so over the rate's gridlines a bar of 1 stood at "50 %". They now stand in a panel of their
    own below the rate, on a count axis labelled as such."""
    series = a_month()
    figure = trend_figure(
        series, title="第一中学 · 一班", rate_label="打卡率", abnormal_label="异常人数"
    )
    rate_axes, count_axes = figure.axes
    counts = [f.abnormal for _, f in series]

    assert rate_axes.get_ylim() == (0, 105)
    assert list(rate_axes.get_yticks()) == [0, 20, 40, 60, 80, 100]
    assert rate_axes.yaxis.get_major_formatter()(100, 0) == "100%"
    assert rate_axes.get_ylabel() == "打卡率"
    assert rate_axes.containers == []  # no bar on the rate's scale
    [line] = rate_axes.get_lines()
    plotted = [None if math.isnan(y) else y for y in np.asarray(line.get_ydata(), dtype=float)]
    assert plotted == [None if f.rate is None else 100 * f.rate for _, f in series]
    assert plotted.count(None) == 9  # the weekends: gaps, not 0 %

    assert count_axes.get_ylabel() == "异常人数"
    assert bar_heights(count_axes) == counts  # in counts: a bar of 1 is 1 high
    low, high = count_axes.get_ylim()
    assert low == 0 and 12 < high < 20  # room for the label over the 12, no more
    ticks = [t for t in count_axes.get_yticks() if low <= t <= high]
    assert ticks == [0, 5, 10, 15]
    shown = [text.get_text() for text in count_axes.texts]
    assert [t for t in shown if t] == ["1", "3", "1", "12", "1"]  # day order; no "0"s
    assert count_axes.get_shared_x_axes().joined(rate_axes, count_axes)
    below = count_axes.get_position().y1 < rate_axes.get_position().y0
    assert below and rate_axes.get_shared_y_axes().get_siblings(rate_axes) == [rate_axes]
    labels = [t.get_text() for t in count_axes.get_xticklabels()]
    assert labels[-1] == "11-28" and len(labels) == 15


def test_a_month_without_abnormal_check_ins_has_an_empty_count_axis_of_0_to_1() -> None:
    series = [day_figures(LAST - timedelta(days=13 - i), 48, 44 + i % 5, 0) for i in range(14)]
    figure = trend_figure(series, title="一班", rate_label="打卡率", abnormal_label="异常人数")
    rate_axes, count_axes = figure.axes
    assert count_axes.get_ylim() == (0, 1)
    assert list(count_axes.get_yticks()) == [0, 1]
    assert bar_heights(count_axes) == [0] * 14
    assert not any(text.get_text() for text in count_axes.texts)
    assert rate_axes.get_ylim() == (0, 105)
    decode(render_trend(series, title="一班", rate_label="打卡率", abnormal_label="异常人数"))
