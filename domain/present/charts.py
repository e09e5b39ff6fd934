"""Managers' trend chart: a scope's figures day by day (`storage.trends`), drawn as a PNG with
matplotlib.

Rendering is synchronous and CPU-bound: callers on the event loop run `render_trend` in a thread
(`asyncio.to_thread`). Only the Agg canvas is used (no pyplot, no GUI backend), and a lock keeps
the renders one at a time, since matplotlib's settings and font cache are process-wide.
"""

from __future__ import annotations

import functools
import io
import math
import threading
from collections.abc import Sequence
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from domain.status import Figures

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Charts draw Chinese unit names with Noto Sans CJK SC, from the noto-cjk-sans-otc package
# (OFL-1.1; upstream's NotoSansCJK-Regular.ttc, the same file Debian ships in fonts-noto-cjk),
# registered with matplotlib by path: no system font is needed or looked for.
CJK_FONT_PACKAGE = "noto_cjk_sans_otc"
CJK_FONT_FILE = "NotoSansCJK-Regular.ttc"
CJK_FAMILY = "Noto Sans CJK SC"
PROBE = "第一中学工程学院打卡率异常"  # unit names and the chart's own words

RATE_COLOUR = "#1f77b4"
RATE_TOP = 105  # the rate axis: 0–100 %, with room for the markers of a full day
COUNT_HEADROOM = 1.25  # the count axis reaches this far above the tallest bar, for its label
LABELLED_BARS = 31  # write the abnormal count over the bars up to a month; beyond, too crowded
MIN_WIDTH_DAYS = 7  # the x axis spans at least a week's width
ABNORMAL_COLOUR = "#d62728"

_render_lock = threading.Lock()


def cjk_font_path() -> Path:
    """The packaged font collection that holds `CJK_FAMILY`."""
    return Path(str(resources.files(CJK_FONT_PACKAGE).joinpath(CJK_FONT_FILE)))


@functools.cache
def cjk_family() -> str:
    """The family charts draw Chinese with, added to matplotlib's font list once per process
    (every face of the collection: SC, TC, HK, JP, KR)."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(cjk_font_path())
    return CJK_FAMILY


def _tick_step(n: int) -> int:
    """Label every day up to 15 days, then every other day or fewer: at most 15 labels."""
    return max(1, math.ceil(n / 15))


def render_trend(
    series: Sequence[tuple[date, Figures]], *, title: str, rate_label: str, abnormal_label: str
) -> bytes:
    """A PNG of `trend_figure`."""
    if not series:
        raise ValueError("an empty series has no chart")
    with _render_lock:
        return _draw(
            series,
            family=cjk_family(),
            title=title,
            rate_label=rate_label,
            abnormal_label=abnormal_label,
        )


def _draw(
    series: Sequence[tuple[date, Figures]],
    *,
    family: str,
    title: str,
    rate_label: str,
    abnormal_label: str,
) -> bytes:
    import matplotlib

    families = [family, "DejaVu Sans"]  # DejaVu for any symbol the CJK font lacks
    with matplotlib.rc_context({"font.family": families, "axes.unicode_minus": False}):
        figure = trend_figure(
            series, title=title, rate_label=rate_label, abnormal_label=abnormal_label
        )
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    return buffer.getvalue()


def trend_figure(
    series: Sequence[tuple[date, Figures]], *, title: str, rate_label: str, abnormal_label: str
) -> Figure:
    """Two panels over the same days (MM-DD): the reporting rate as a line on a 0–100 % axis
    (a gap, shaded, where nobody was expected), and below it the abnormal count as bars on an
    axis of its own, in whole numbers and labelled as a count. Each quantity has its own scale
    and its own label beside it, so a bar is never read against the percentages: a secondary
    axis on the same panel would put a bar of 1 next to the rate's gridlines, and the reader
    would have to know which side to read."""
    if not series:
        raise ValueError("an empty series has no chart")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    figure = Figure(figsize=(9, 5.6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    rate_axes, count_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])

    x = list(range(len(series)))
    rates = [math.nan if f.rate is None else 100 * f.rate for _, f in series]
    abnormal = [f.abnormal for _, f in series]
    for i, (_, f) in enumerate(series):
        if f.rate is None:  # nobody expected: a shaded gap, not 0 %
            for axes in (rate_axes, count_axes):
                axes.axvspan(i - 0.5, i + 0.5, color="0.5", alpha=0.1, linewidth=0)

    rate_axes.plot(x, rates, color=RATE_COLOUR, marker="o", markersize=4, linewidth=2)
    rate_axes.set_ylim(0, RATE_TOP)
    rate_axes.set_yticks([0, 20, 40, 60, 80, 100])
    rate_axes.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    rate_axes.set_ylabel(rate_label, color=RATE_COLOUR, parse_math=False)
    rate_axes.grid(axis="y", alpha=0.3)
    rate_axes.set_title(title, parse_math=False)

    bars = count_axes.bar(x, abnormal, width=0.6, color=ABNORMAL_COLOUR)
    if len(series) <= LABELLED_BARS:
        count_axes.bar_label(
            bars, labels=[str(n) if n else "" for n in abnormal], fontsize=8, padding=1
        )
    most = max(abnormal)
    # Room above the tallest bar for its label; a count axis of 0–1 when there is none.
    count_axes.set_ylim(0, max(1, math.ceil(most * COUNT_HEADROOM)))
    count_axes.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True, min_n_ticks=2))
    count_axes.set_ylabel(abnormal_label, color=ABNORMAL_COLOUR, parse_math=False)
    count_axes.grid(axis="y", alpha=0.3)

    step = _tick_step(len(series))
    ticks = x[::-1][::step][::-1]  # keep the last day labelled
    count_axes.set_xticks(ticks, [series[i][0].strftime("%m-%d") for i in ticks])
    count_axes.tick_params(axis="x", labelrotation=45 if len(ticks) > 8 else 0)
    pad = max(0.0, (MIN_WIDTH_DAYS - len(series)) / 2)  # no week-wide bar for one day
    count_axes.set_xlim(-0.6 - pad, len(series) - 0.4 + pad)
    return figure
