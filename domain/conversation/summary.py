"""/summary and its drill-down: a unit's figures and its children's, down the tree and back up,
paged when a college has a hundred classes. Every unit a key names is asked of the caller's
`Scope` before anything is read: a key is the presser's to forge."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import date

from domain.clock import day_end, parse_day
from domain.conversation.io import Command, Option
from domain.conversation.manager_keys import (
    TOP,
    ListKey,
    NavKey,
    OrgKey,
    asked_day,
    stale,
)
from domain.conversation.turn import Turn
from domain.i18n import _
from domain.present import texts
from domain.status import Figures
from storage.aggregates import total, unit_figures
from storage.models import Unit
from storage.schedules import plan
from storage.scope import Scope

UNIT_PAGE = 12  # child units per summary page: a college may have a hundred classes


async def pressed(
    turn: Turn, scope: Scope, unit_id: int, day_text: str
) -> tuple[Unit | None, date] | None:
    """The unit (None: the scope's top) and day a key carries, when both are the presser's
    to read; None after saying the button is no longer valid."""
    day = parse_day(day_text, scope.today(turn.clock))
    unit = await scope.unit(turn.repo.session, unit_id) if unit_id != TOP else None
    if day is None or (unit_id != TOP and unit is None):
        await stale(turn)
        return None
    return unit, day


async def on_summary(turn: Turn, scope: Scope, command: Command) -> None:
    """/summary [date]: the top of the caller's scope."""
    day = await asked_day(turn, command, scope)
    if day is None:
        return
    text, options = await summary_view(turn, scope, None, day)
    await turn.out.say(text, options)


async def on_navigate(turn: Turn, scope: Scope, key: NavKey) -> None:
    """A unit's button, a page arrow or "up": the view replaces the one pressed."""
    asked = await pressed(turn, scope, key.unit, key.day)
    if asked is None:
        return
    unit, day = asked
    text, options = await summary_view(turn, scope, unit, day, key.page)
    await turn.out.notice()
    await turn.out.replace(text, options)


async def summary_view(
    turn: Turn, scope: Scope, unit: Unit | None, day: date, page: int = 0
) -> tuple[str, list[list[Option]]]:
    """One unit's figures and its children's (None: the scope's top — the organisation's
    roots, or each granted unit — unless the scope is one unit, which is then shown)."""
    repo = turn.repo
    org = scope.org
    off = (await plan(repo.session, org)).off_units(day)
    enrolled_by = day_end(day, org.timezone)
    tops: list[Unit] | None = None
    if unit is None:
        tops = await scope.tops(repo.session)
        if not scope.whole and len(tops) == 1:
            unit = tops[0]
    up: int | None = None
    if unit is None:
        assert tops is not None
        parts = await unit_figures(
            repo.session, units=tops, day=day, off_units=off, enrolled_by=enrolled_by
        )
        if not scope.whole:  # granted units of several branches: named in full
            parts = [replace(f, name=u.name_path) for f, u in zip(parts, tops, strict=True)]
        whole = total(org.name, parts)
        name, here = org.name, TOP
    else:
        assert unit.id is not None
        children = list(await repo.units.children(unit_id=unit.id))
        whole, *parts = await unit_figures(
            repo.session, units=[unit, *children], day=day, off_units=off, enrolled_by=enrolled_by
        )
        name, here = unit.name_path, unit.id
        if unit.parent_id is not None and await scope.unit(repo.session, unit.parent_id):
            up = unit.parent_id
        elif tops is None and (scope.whole or len(await scope.tops(repo.session)) > 1):
            up = TOP
    lines = [
        _("📊 <b>{scope}</b> — {day}").format(scope=html.escape(name), day=day.isoformat()),
        texts.figures_line(whole),
    ]
    if whole.all_zero:
        lines.append(_("Zero report: every figure is 0 today."))
    pages = max(1, -(-len(parts) // UNIT_PAGE))
    page = min(page, pages - 1)
    shown = parts[page * UNIT_PAGE : (page + 1) * UNIT_PAGE]
    if shown:
        title = _("<b>By unit</b>") + (f" ({page + 1}/{pages})" if pages > 1 else "")
        lines += ["", title] + [f"• {texts.figures_line(f)}" for f in shown]
    iso = day.isoformat()
    rows = [
        [Option(f"🔎 {f.name} ({rate(f)})", key=NavKey(unit=f.unit_id or 0, day=iso).pack())]
        for f in shown
    ]
    paging = [
        Option(arrow, key=NavKey(unit=here, day=iso, page=target).pack())
        for arrow, target in (("«", page - 1), ("»", page + 1))
        if 0 <= target < pages
    ]
    if paging:
        rows.append(paging)
    rows.append(
        [
            Option(
                _("Missing ({n})").format(n=whole.missing),
                key=ListKey(kind="missing", unit=here, day=iso).pack(),
            ),
            Option(
                _("Abnormal ({n})").format(n=whole.abnormal),
                key=ListKey(kind="abnormal", unit=here, day=iso).pack(),
            ),
        ]
    )
    if up is not None:
        rows.append([Option(_("⬆ Up"), key=NavKey(unit=up, day=iso).pack())])
    elif here == TOP and len(scope.orgs) > 1:
        rows.append([Option(_("🏫 Another organisation"), key=OrgKey(org=0).pack())])
    return "\n".join(lines), rows


def rate(f: Figures) -> str:
    return texts.rate_text(f)
