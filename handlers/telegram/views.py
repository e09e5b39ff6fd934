"""Managers' views of their scope: /summary with drill-down, /missing and /abnormal lists with a
nudge button, /member, /export. Every handler is behind the managers' gate (handlers.telegram.gate)
and asks the caller's `Scope` about each id it is given: callback data is user input."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import date, timedelta

from aiogram import Bot
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)

from domain import texts
from domain.clock import Clock, day_end, day_window, parse_day
from domain.conversation.turn import Visitor
from domain.i18n import _, current_language
from domain.status import DayStatus, Figures
from handlers.telegram.gate import managers_router, stale
from handlers.telegram.keyboards import ListCb, NavCb, NudgeCb, OrgCb
from handlers.telegram.uploads import Upload
from storage.aggregates import count_member_days, member_days, total, unit_figures
from storage.letters import reminder_letter
from storage.models import TELEGRAM, Unit
from storage.repo import Repo
from storage.schedules import OutboxRepo, plan
from storage.scope import Scope

__all__ = ["ListCb", "NavCb", "NudgeCb"]

router = managers_router("views")

PAGE = 10
UNIT_PAGE = 12  # child units per summary page: a college may have a hundred classes
TOP = 0  # unit id 0 in callback data: the top of the caller's scope


async def asked_day(message: Message, text: str | None, scope: Scope, clock: Clock) -> date | None:
    """The day a command asks about (the organisation's today without one); None after saying
    which days can be asked about."""
    today = scope.today(clock)
    day = parse_day(text, today)
    if day is None:
        first, last = day_window(today)
        await message.answer(
            _(
                "Please give the date as YYYY-MM-DD, from {first} to {last}, for example {today}."
            ).format(first=first, last=last, today=today)
        )
    return day


async def pressed(
    query: CallbackQuery, repo: Repo, scope: Scope, clock: Clock, unit_id: int, day_text: str
) -> tuple[Unit | None, date] | None:
    """The unit (None: the scope's top) and day a button carries, when both are the presser's
    to read; None after saying the button is no longer valid."""
    day = parse_day(day_text, scope.today(clock))
    unit = await scope.unit(repo.session, unit_id) if unit_id != TOP else None
    if day is None or (unit_id != TOP and unit is None):
        await stale(query)
        return None
    return unit, day


async def summary_view(
    repo: Repo, scope: Scope, unit: Unit | None, day: date, page: int = 0
) -> tuple[str, InlineKeyboardMarkup]:
    """One unit's figures and its children's (None: the scope's top — the organisation's
    roots, or each granted unit — unless the scope is one unit, which is then shown)."""
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
        [
            InlineKeyboardButton(
                text=f"🔎 {f.name} ({rate(f)})",
                callback_data=NavCb(unit=f.unit_id or 0, day=iso).pack(),
            )
        ]
        for f in shown
    ]
    paging = [
        InlineKeyboardButton(
            text=arrow, callback_data=NavCb(unit=here, day=iso, page=target).pack()
        )
        for arrow, target in (("«", page - 1), ("»", page + 1))
        if 0 <= target < pages
    ]
    if paging:
        rows.append(paging)
    rows.append(
        [
            InlineKeyboardButton(
                text=_("Missing ({n})").format(n=whole.missing),
                callback_data=ListCb(kind="missing", unit=here, day=iso).pack(),
            ),
            InlineKeyboardButton(
                text=_("Abnormal ({n})").format(n=whole.abnormal),
                callback_data=ListCb(kind="abnormal", unit=here, day=iso).pack(),
            ),
        ]
    )
    if up is not None:
        rows.append(
            [InlineKeyboardButton(text=_("⬆ Up"), callback_data=NavCb(unit=up, day=iso).pack())]
        )
    elif here == TOP and len(scope.orgs) > 1:
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("🏫 Another organisation"), callback_data=OrgCb(org=0).pack()
                )
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def rate(f: Figures) -> str:
    return texts.rate_text(f)


@router.message(Command("summary"), StateFilter(None))
async def on_summary(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, scope: Scope
) -> None:
    day = await asked_day(message, command.args, scope, clock)
    if day is None:
        return
    text, markup = await summary_view(repo, scope, None, day)
    await message.answer(text, reply_markup=markup)


@router.callback_query(NavCb.filter())
async def on_navigate(
    query: CallbackQuery, callback_data: NavCb, repo: Repo, clock: Clock, scope: Scope
) -> None:
    asked = await pressed(query, repo, scope, clock, callback_data.unit, callback_data.day)
    if asked is None:
        return
    unit, day = asked
    text, markup = await summary_view(repo, scope, unit, day, callback_data.page)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def list_view(
    repo: Repo, scope: Scope, kind: str, unit: Unit | None, day: date, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    """Who is missing, or abnormal, in a unit of the scope (None: the whole scope)."""
    org = scope.org
    assert org.id is not None
    unit_id = TOP if unit is None else unit.id or TOP
    under = await scope.under(repo.session) if unit is None else [unit_id]
    off = (await plan(repo.session, org)).off_units(day)
    statuses = {DayStatus.MISSING} if kind == "missing" else {DayStatus.REPORTED}
    abnormal_only = kind == "abnormal"
    rows = await member_days(
        repo.session,
        org_id=org.id,
        day=day,
        under=under,
        statuses=statuses,
        abnormal_only=abnormal_only,
        off_units=off,
        enrolled_by=day_end(day, org.timezone),
        limit=PAGE + 1,
        offset=page * PAGE,
    )
    more, rows = len(rows) > PAGE, rows[:PAGE]
    count = (
        await count_member_days(
            repo.session,
            org_id=org.id,
            day=day,
            under=under,
            statuses=statuses,
            off_units=off,
            enrolled_by=day_end(day, org.timezone),
        )
        if kind == "missing"
        else None
    )
    lang = current_language()
    title = (
        _("📋 <b>Missing</b> — {day}").format(day=day.isoformat())
        if kind == "missing"
        else _("⚠️ <b>Abnormal</b> — {day}").format(day=day.isoformat())
    )
    lines = [title + (f" ({count})" if count is not None else "")]
    if not rows:
        lines.append(_("Nobody."))
    for m in rows:
        extra = ""
        if kind == "abnormal":
            extra = ": " + html.escape(texts.reasons_text(m.reasons, org.form, lang))
        elif m.unreachable:
            extra = _(" — unreachable (blocked the bot)")
        lines.append(
            f"• {html.escape(m.name)} ({html.escape(m.external_id)}, "
            f"{html.escape(m.unit_path)}){extra}"
        )
    iso = day.isoformat()
    buttons = []
    if kind == "missing":
        buttons = [
            [
                InlineKeyboardButton(
                    text=_("📣 Nudge {name}").format(name=m.name),
                    callback_data=NudgeCb(member=m.member_id, day=iso).pack(),
                )
            ]
            for m in rows
            if not m.unreachable
        ]
    paging = []
    if page > 0:
        paging.append(
            InlineKeyboardButton(
                text="«",
                callback_data=ListCb(kind=kind, unit=unit_id, day=iso, page=page - 1).pack(),
            )
        )
    if more:
        paging.append(
            InlineKeyboardButton(
                text="»",
                callback_data=ListCb(kind=kind, unit=unit_id, day=iso, page=page + 1).pack(),
            )
        )
    if paging:
        buttons.append(paging)
    buttons.append(
        [
            InlineKeyboardButton(
                text=_("« Summary"), callback_data=NavCb(unit=unit_id, day=iso).pack()
            )
        ]
    )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons)


@router.callback_query(ListCb.filter())
async def on_list(
    query: CallbackQuery, callback_data: ListCb, repo: Repo, clock: Clock, scope: Scope
) -> None:
    asked = await pressed(query, repo, scope, clock, callback_data.unit, callback_data.day)
    if asked is None:
        return
    unit, day = asked
    text, markup = await list_view(repo, scope, callback_data.kind, unit, day, callback_data.page)
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def send_list(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, scope: Scope, kind: str
) -> None:
    day = await asked_day(message, command.args, scope, clock)
    if day is None:
        return
    text, markup = await list_view(repo, scope, kind, None, day, 0)
    await message.answer(text, reply_markup=markup)


@router.message(Command("missing"), StateFilter(None))
async def on_missing(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, scope: Scope
) -> None:
    await send_list(message, command, repo, clock, scope, "missing")


@router.message(Command("abnormal"), StateFilter(None))
async def on_abnormal(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, scope: Scope
) -> None:
    await send_list(message, command, repo, clock, scope, "abnormal")


@router.callback_query(NudgeCb.filter())
async def on_nudge(
    query: CallbackQuery,
    callback_data: NudgeCb,
    bot: Bot,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    member = await scope.member(repo.session, member_id=callback_data.member)
    day = parse_day(callback_data.day, scope.today(clock))
    if member is None or day is None:
        await stale(query)
        return
    contact = await repo.accounts.contact(channel=TELEGRAM, account_id=member.account_id)
    if contact is None or member.unreachable_since is not None:
        await query.answer(
            _("{name} cannot be reached.").format(name=member.name), show_alert=True
        )
        return
    org = scope.org
    assert member.id is not None and org.id is not None
    letter = reminder_letter(
        org_id=org.id,
        channel=TELEGRAM,
        address=contact.external_id,
        member_id=member.id,
        name=member.name,
        day=day,
        slot=f"nudge@{clock.now():%H:%M}",
    )
    await OutboxRepo(repo.session).enqueue([letter], now=clock.now())
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="member.nudge",
        subject=member.external_id,
        now=clock.now(),
    )
    await query.answer(_("Reminder sent to {name}.").format(name=member.name))


@router.message(Command("member"), StateFilter(None))
async def on_member(
    message: Message,
    command: CommandObject,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    external_id = (command.args or "").strip()
    org = scope.org
    assert org.id is not None
    member = await scope.member(repo.session, external_id=external_id)
    if member is None:
        # The same answer for "no such id" and "not yours": scope is not to be probed.
        await message.answer(
            _("No member {id} in your scope.").format(id=html.escape(external_id))
        )
        return
    assert member.id is not None
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="member.view",
        subject=member.external_id,
        now=clock.now(),
    )
    today = scope.today(clock)
    since = today - timedelta(days=13)
    checkins = {
        c.local_day: c
        for c in await repo.checkins.history(member_id=member.id, since=since, until=today)
    }
    unit = await repo.session.get(Unit, member.unit_id)
    lang = current_language()
    lines = [
        f"<b>{html.escape(member.name)}</b> ({html.escape(member.external_id)}, "
        f"{html.escape(unit.name_path if unit else '')})"
    ]
    day = today
    while day >= since:
        c = checkins.get(day)
        if c is None:
            lines.append(f"❌ {day.isoformat()}")
        elif c.abnormal:
            lines.append(
                f"⚠️ {day.isoformat()} " + html.escape(texts.reasons_text(c.reasons, c.form, lang))
            )
        else:
            place = " ".join(dict.fromkeys(p for p in (c.province, c.city) if p))
            lines.append(f"✅ {day.isoformat()} {html.escape(place)}")
        day -= timedelta(days=1)
    await message.answer("\n".join(lines))


@router.message(Command("export"), StateFilter(None))
async def on_export(
    message: Message,
    command: CommandObject,
    bot: Bot,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    """/export [csv] [DATE | FROM TO]: the scope's rows as .xlsx (or .csv)."""
    from storage.export import export_days  # openpyxl: not in every process's memory

    org = scope.org
    words = (command.args or "").split()
    as_csv = bool(words) and words[0].lower() == "csv"
    words = words[1:] if as_csv else words
    today = scope.today(clock)
    days = [parse_day(w, today) for w in words] or [today]
    if len(days) > 2 or any(d is None for d in days):
        await message.answer(
            _("Usage: /export [csv] [DATE | FROM TO], for example /export 2026-11-01 2026-11-28")
        )
        return
    first, last = days[0], days[-1]
    assert first is not None and last is not None
    under = await scope.under(repo.session)
    try:
        export_days(first, last)
    except ValueError:
        await message.answer(_("Please choose at most 366 days, the first before the last."))
        return
    kind = "csv" if as_csv else "xlsx"
    # Made after the commit, off the event loop (handlers.telegram.uploads.Upload); `{rows}` is
    # filled in then.
    upload = Upload(
        "export",
        {"org": org.id, "first": f"{first}", "last": f"{last}", "under": under, "format": kind},
        filename=f"daka-{first}-{last}.{kind}",
        failed=_(
            "This export could not be made. Please choose fewer days, or ask for CSV:"
            " /export csv FROM TO"
        ),
    )
    await bot.send_document(
        message.chat.id,
        upload,
        caption=_("{rows} rows, {first} to {last}").format(rows="{rows}", first=first, last=last),
    )
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="export",
        subject=scope.label,
        detail=f"{first}..{last} {'csv' if as_csv else 'xlsx'}",
        now=clock.now(),
    )
