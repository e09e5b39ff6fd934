"""The trend chart: a PNG that decodes, drawn with a font that has Chinese glyphs."""

from __future__ import annotations

import io
import math
from datetime import date, timedelta

import numpy as np
import pytest
from matplotlib.axes import Axes
from PIL import Image

from domain.present.charts import (
    CJK_FAMILY,
    PROBE,
    cjk_family,
    cjk_font_path,
    render_trend,
    trend_figure,
)
from domain.status import Figures
from storage.trends import MAX_DAYS

LAST = date(2026, 11, 28)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
