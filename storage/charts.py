"""Managers' trend chart: a scope's figures day by day (SQL), drawn as a PNG with matplotlib.

Rendering is synchronous and CPU-bound: callers on the event loop run `render_trend` in a thread
(`asyncio.to_thread`). Only the Agg canvas is used (no pyplot, no GUI backend), and a lock keeps
the renders one at a time, since matplotlib's settings and font cache are process-wide.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import threading
import warnings
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import day_end
from domain.status import Figures
from storage.aggregates import total, unit_figures
from storage.models import Organisation
from storage.repo import UnitRepo
from storage.schedules import plan

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontEntry

log = logging.getLogger(__name__)

MAX_DAYS = 90
WHOLE_ORG = 0  # unit id 0: the whole organisation, as in handlers.views

# Families with Simplified Chinese glyphs, best first. The Docker image and CI install Debian's
# fonts-noto-cjk (one .ttc whose faces are the SC/TC/JP/KR/HK variants).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Droid Sans Fallback",
)
PROBE = "第一中学工程学院打卡率异常"  # a font that has these is good enough for unit names

RATE_COLOUR = "#1f77b4"
RATE_TOP = 105  # the rate axis: 0–100 %, with room for the markers of a full day
COUNT_HEADROOM = 1.25  # the count axis reaches this far above the tallest bar, for its label
LABELLED_BARS = 31  # write the abnormal count over the bars up to a month; beyond, too crowded
MIN_WIDTH_DAYS = 7  # the x axis spans at least a week's width
ABNORMAL_COLOUR = "#d62728"

_render_lock = threading.Lock()


async def trend_series(
    session: AsyncSession, *, org: Organisation, unit_id: int, last: date, days: int
) -> list[tuple[date, Figures]]:
    """The figures of a unit's subtree (`unit_id` 0: the whole organisation) for each of the
    `days` days up to and including `last`, oldest first. Days off and enrolment are judged per
    day, as /summary does."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be between 1 and {MAX_DAYS}, not {days}")
    assert org.id is not None
    units = UnitRepo(session)
    if unit_id == WHOLE_ORG:
        scope = list(await units.roots(org_id=org.id))
    else:
        unit = await units.get(unit_id=unit_id)
        if unit.org_id != org.id:
            raise ValueError(f"unit #{unit_id} is not in organisation #{org.id}")
        scope = [unit]
    org_plan = await plan(session, org)
    series = []
    for back in range(days - 1, -1, -1):
        day = last - timedelta(days=back)
        parts = await unit_figures(
            session,
            units=scope,
            day=day,
            off_units=org_plan.off_units(day),
            enrolled_by=day_end(day, org.timezone),
        )
        series.append((day, total(org.name, parts) if unit_id == WHOLE_ORG else parts[0]))
    return series


def _preferred(entries: Iterable[FontEntry]) -> str | None:
    names = {e.name for e in entries}
    return next((name for name in CJK_FAMILIES if name in names), None)


def _covering(entries: Iterable[FontEntry]) -> str | None:
    """Any other font with real glyphs for the probe text. Matplotlib's own "Last Resort" font
    maps every character to a placeholder box: that is what we are avoiding."""
    from matplotlib.ft2font import FT2Font

    for entry in entries:
        if entry.name.startswith("Last Resort"):
            continue
        try:
            font = FT2Font(entry.fname, face_index=entry.index)
        except (OSError, RuntimeError, ValueError):
            continue
        if all(font.get_char_index(ord(c)) for c in PROBE):
            return entry.name
    return None


@functools.cache
def cjk_family() -> str | None:
    """A font family that draws Chinese, or None. Matplotlib keeps its font list in a cache file
    (~/.cache/matplotlib), so a font installed after that file was written is looked for among
    the system's font files too and added."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    found = _preferred(manager.ttflist)
    if found is None:
        known = {e.fname for e in manager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    manager.addfont(path)
                except (OSError, RuntimeError, ValueError):
                    continue
        found = _preferred(manager.ttflist) or _covering(manager.ttflist)
    if found is None:
        log.warning("no CJK font found: Chinese text in charts will not render (fonts-noto-cjk)")
    return found


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
        family = cjk_family()
        with warnings.catch_warnings():
            if family is None:  # already logged; draw what we can rather than fail
                warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
            return _draw(
                series,
                family=family,
                title=title,
                rate_label=rate_label,
                abnormal_label=abnormal_label,
            )


def _draw(
    series: Sequence[tuple[date, Figures]],
    *,
    family: str | None,
    title: str,
    rate_label: str,
    abnormal_label: str,
) -> bytes:
    import matplotlib

    families = [family, "DejaVu Sans"] if family else ["DejaVu Sans"]
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
