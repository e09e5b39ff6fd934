"""Files of the caller's scope: /export (a workbook or CSV of days, made after the commit, away
from the conversation: `Out.file_later`) and /trend (a PNG chart of the last days, drawn in a
thread). Both are audited with the scope they read."""

from __future__ import annotations

import asyncio
import html

from domain.clock import parse_day
from domain.conversation.io import Command
from domain.conversation.manager_keys import actor
from domain.conversation.turn import Turn
from domain.i18n import _
from domain.present.charts import render_trend
from storage.models import Unit
from storage.scope import Scope
from storage.trends import MAX_DAYS, trend_series

DEFAULT_TREND_DAYS = 14
EXPORT_MAKER = "export"  # storage.makers.MAKERS


async def on_export(turn: Turn, scope: Scope, command: Command) -> None:
    """/export [csv] [DATE | FROM TO]: the scope's rows as .xlsx (or .csv)."""
    from storage.export import export_days  # openpyxl: not in every process's memory

    words = command.args.split()
    as_csv = bool(words) and words[0].lower() == "csv"
    words = words[1:] if as_csv else words
    today = scope.today(turn.clock)
    days = [parse_day(w, today) for w in words] or [today]
    if len(days) > 2 or any(d is None for d in days):
        await turn.out.say(
            _("Usage: /export [csv] [DATE | FROM TO], for example /export 2026-11-01 2026-11-28")
        )
        return
    first, last = days[0], days[-1]
    assert first is not None and last is not None
    under = await scope.under(turn.repo.session)
    try:
        export_days(first, last)
    except ValueError:
        await turn.out.say(_("Please choose at most 366 days, the first before the last."))
        return
    kind = "csv" if as_csv else "xlsx"
    await turn.out.file_later(
        EXPORT_MAKER,
        {
            "org": scope.org_id,
            "first": f"{first}",
            "last": f"{last}",
            "under": under,
            "format": kind,
        },
        f"daka-{first}-{last}.{kind}",
        _(
            "This export could not be made. Please choose fewer days, or ask for CSV:"
            " /export csv FROM TO"
        ),
        caption=_("{rows} rows, {first} to {last}").format(rows="{rows}", first=first, last=last),
    )
    await turn.repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="export",
        subject=scope.label,
        detail=f"{first}..{last} {kind}",
        now=turn.clock.now(),
    )


def parse_days(text: str | None) -> int | None:
    """The number of days asked for (the default without one), or None when it is no whole
    number from 1 to MAX_DAYS."""
    if text is None or not text.strip():
        return DEFAULT_TREND_DAYS
    word = text.strip()
    if not (word.isascii() and word.isdigit()):
        return None
    days = int(word)
    return days if 1 <= days <= MAX_DAYS else None


def scope_name(scope: Scope, tops: list[Unit]) -> str:
    """The organisation's name, or the granted units' paths (shortened past a line)."""
    if scope.whole or not tops:
        return scope.org.name
    name = "; ".join(u.name_path for u in tops)
    return name if len(name) <= 120 else name[:119] + "…"


async def on_trend(turn: Turn, scope: Scope, command: Command) -> None:
    """/trend [days]: the reporting rate and the abnormal count per day, as a chart."""
    days = parse_days(command.args)
    if days is None:
        await turn.out.say(
            _("Please give a number of days from 1 to {most}, for example /trend 30.").format(
                most=MAX_DAYS
            )
        )
        return
    session = turn.repo.session
    tops = await scope.tops(session)
    name = scope_name(scope, tops)
    last = scope.today(turn.clock)
    under = await scope.under(session)
    series = await trend_series(session, org=scope.org, under=under, last=last, days=days)
    first = series[0][0]
    heading = _("{scope}, {first} to {last}")
    png = await asyncio.to_thread(
        render_trend,
        series,
        title=heading.format(scope=name, first=first, last=last),
        rate_label=_("Reporting rate"),
        abnormal_label=_("Abnormal count"),
    )
    await turn.out.file(
        "trend.png",
        png,
        caption="📈 "
        + heading.format(scope=html.escape(name), first=first, last=last)
        + "\n"
        + _("Grey days: nobody was expected to check in."),
        image=True,
    )
    await turn.repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="trend",
        subject=scope.label,
        detail=f"{first}..{last}",
        now=turn.clock.now(),
    )
