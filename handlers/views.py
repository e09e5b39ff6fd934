"""Managers' views of their scope: /summary with drill-down, /missing and /abnormal lists with a
nudge button, /member. Every press is authorised again: callback data is user input."""

from __future__ import annotations

import html
from datetime import date, timedelta

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import gettext as _
from sqlmodel import col, select

from bot.context import Visitor
from bot.i18n import current_language
from bot.replies import Upload
from domain.clock import Clock, day_end, local_day
from domain.status import DayStatus, Figures
from scheduler import texts
from scheduler.rounds import CHECKIN_DATA
from storage.aggregates import count_member_days, member_days, total, unit_figures
from storage.models import Member, Organisation, RoleGrant, Unit, UnitLink
from storage.repo import Repo
from storage.schedules import Letter, OutboxRepo, plan

router = Router(name="views")

PAGE = 10
UNIT_PAGE = 12  # child units per summary page: a college may have a hundred classes
ORG = 0  # unit id 0 in callback data: the whole organisation (admins)


class NavCb(CallbackData, prefix="nav"):
    unit: int
    day: str
    page: int = 0


class ListCb(CallbackData, prefix="lst"):
    kind: str
    unit: int
    day: str
    page: int = 0


class NudgeCb(CallbackData, prefix="nud"):
    member: int
    day: str


async def managed(repo: Repo, visitor: Visitor) -> list[RoleGrant]:
    return [g for g in visitor.roles if g.role in ("manager", "admin")]


async def allowed(repo: Repo, grants: list[RoleGrant], org_id: int, unit_id: int) -> bool:
    """Whether a unit (0: the whole organisation) lies in one of the grants' scopes."""
    mine = [g for g in grants if g.org_id == org_id]
    if any(g.unit_id is None for g in mine):
        return True
    if unit_id == ORG or not mine:
        return False
    stmt = select(UnitLink).where(
        UnitLink.descendant_id == unit_id,
        col(UnitLink.ancestor_id).in_([g.unit_id for g in mine if g.unit_id is not None]),
    )
    return (await repo.session.exec(stmt)).first() is not None


def parse_day(text: str | None, today: date) -> date | None:
    if not text:
        return today
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


async def refuse(message: Message) -> None:
    await message.answer(_("This command is for counselors, cadres and administrators."))


async def manager_day(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> tuple[list[RoleGrant], Organisation, date] | None:
    """The caller's grants, organisation and the day asked for (today without one); None after
    answering a member or a date that cannot be read."""
    grants = await managed(repo, visitor)
    if not grants:
        await refuse(message)
        return None
    org = await repo.orgs.get(org_id=grants[0].org_id)
    day = parse_day(command.args, local_day(clock.now(), org.timezone))
    if day is None:
        await message.answer(
            _("Please give the date as YYYY-MM-DD, for example /summary 2026-11-28.")
        )
        return None
    return grants, org, day


async def summary_view(
    repo: Repo,
    org: Organisation,
    unit_id: int,
    day: date,
    grants: list[RoleGrant],
    page: int = 0,
) -> tuple[str, InlineKeyboardMarkup]:
    assert org.id is not None
    org_plan = await plan(repo.session, org)
    off = org_plan.off_units(day)
    if unit_id == ORG:
        children = list(await repo.units.roots(org_id=org.id))
        parts = await unit_figures(
            repo.session,
            units=children,
            day=day,
            off_units=off,
            enrolled_by=day_end(day, org.timezone),
        )
        whole = total(org.name, parts)
        name, parent = org.name, None
    else:
        unit = await repo.units.get(unit_id=unit_id)
        children = list(await repo.units.children(unit_id=unit_id))
        [whole] = await unit_figures(
            repo.session,
            units=[unit],
            day=day,
            off_units=off,
            enrolled_by=day_end(day, org.timezone),
        )
        parts = await unit_figures(
            repo.session,
            units=children,
            day=day,
            off_units=off,
            enrolled_by=day_end(day, org.timezone),
        )
        name = unit.name_path
        parent = unit.parent_id if unit.parent_id is not None else ORG
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
            text=arrow, callback_data=NavCb(unit=unit_id, day=iso, page=target).pack()
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
                callback_data=ListCb(kind="missing", unit=unit_id, day=iso).pack(),
            ),
            InlineKeyboardButton(
                text=_("Abnormal ({n})").format(n=whole.abnormal),
                callback_data=ListCb(kind="abnormal", unit=unit_id, day=iso).pack(),
            ),
        ]
    )
    if parent is not None and await allowed(repo, grants, org.id, parent):
        rows.append(
            [
                InlineKeyboardButton(
                    text=_("⬆ Up"), callback_data=NavCb(unit=parent, day=iso).pack()
                )
            ]
        )
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)


def rate(f: Figures) -> str:
    return texts.rate_text(f)


def scope_of(grant: RoleGrant) -> int:
    return ORG if grant.unit_id is None else grant.unit_id


@router.message(Command("summary"), StateFilter(None))
async def on_summary(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    asked = await manager_day(message, command, repo, clock, visitor)
    if asked is None:
        return
    grants, org, day = asked
    text, markup = await summary_view(repo, org, scope_of(grants[0]), day, grants)
    await message.answer(text, reply_markup=markup)


async def pressed_in_scope(
    query: CallbackQuery, repo: Repo, visitor: Visitor, unit_id: int, day_text: str
) -> tuple[list[RoleGrant], date] | None:
    """The presser's grants and the button's day, when the unit is theirs; None after saying it
    is not (callback data is whatever the client sent)."""
    grants = await managed(repo, visitor)
    day = parse_day(day_text, date.today())
    if not grants or day is None or not await allowed(repo, grants, grants[0].org_id, unit_id):
        await query.answer(_("This is outside your scope."), show_alert=True)
        return None
    return grants, day


@router.callback_query(NavCb.filter())
async def on_navigate(
    query: CallbackQuery, callback_data: NavCb, repo: Repo, visitor: Visitor
) -> None:
    scoped = await pressed_in_scope(query, repo, visitor, callback_data.unit, callback_data.day)
    if scoped is None:
        return
    grants, day = scoped
    org = await repo.orgs.get(org_id=grants[0].org_id)
    text, markup = await summary_view(
        repo, org, callback_data.unit, day, grants, max(0, callback_data.page)
    )
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def list_view(
    repo: Repo, org: Organisation, kind: str, unit_id: int, day: date, page: int
) -> tuple[str, InlineKeyboardMarkup]:
    assert org.id is not None
    under = (
        [u.id or 0 for u in await repo.units.roots(org_id=org.id)] if unit_id == ORG else [unit_id]
    )
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
    query: CallbackQuery, callback_data: ListCb, repo: Repo, visitor: Visitor
) -> None:
    if callback_data.kind not in ("missing", "abnormal") or callback_data.page < 0:
        await query.answer(_("This is outside your scope."), show_alert=True)
        return
    scoped = await pressed_in_scope(query, repo, visitor, callback_data.unit, callback_data.day)
    if scoped is None:
        return
    grants, day = scoped
    org = await repo.orgs.get(org_id=grants[0].org_id)
    text, markup = await list_view(
        repo, org, callback_data.kind, callback_data.unit, day, callback_data.page
    )
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(text, reply_markup=markup)


async def send_list(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor, kind: str
) -> None:
    asked = await manager_day(message, command, repo, clock, visitor)
    if asked is None:
        return
    grants, org, day = asked
    text, markup = await list_view(repo, org, kind, scope_of(grants[0]), day, 0)
    await message.answer(text, reply_markup=markup)


@router.message(Command("missing"), StateFilter(None))
async def on_missing(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await send_list(message, command, repo, clock, visitor, "missing")


@router.message(Command("abnormal"), StateFilter(None))
async def on_abnormal(
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    await send_list(message, command, repo, clock, visitor, "abnormal")


@router.callback_query(NudgeCb.filter())
async def on_nudge(
    query: CallbackQuery,
    callback_data: NudgeCb,
    bot: Bot,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
) -> None:
    grants = await managed(repo, visitor)
    member = await repo.session.get(Member, callback_data.member)
    day = parse_day(callback_data.day, date.today())
    if (
        not grants
        or member is None
        or day is None
        or not await allowed(repo, grants, member.org_id, member.unit_id)
    ):
        await query.answer(_("This is outside your scope."), show_alert=True)
        return
    if member.telegram_id is None or member.unreachable_since is not None:
        await query.answer(
            _("{name} cannot be reached.").format(name=member.name), show_alert=True
        )
        return
    org = await repo.orgs.get(org_id=member.org_id)
    assert member.id is not None and org.id is not None
    letter = Letter(
        org_id=org.id,
        chat_id=member.telegram_id,
        member_id=member.id,
        kind="remind",
        day=day,
        slot=f"nudge@{clock.now():%H:%M}",
        text=texts.reminder_text(member.name, day),
        markup={
            "inline_keyboard": [[{"text": texts.checkin_button(), "callback_data": CHECKIN_DATA}]]
        },
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
    message: Message, command: CommandObject, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    grants = await managed(repo, visitor)
    if not grants:
        await refuse(message)
        return
    external_id = (command.args or "").strip()
    org = await repo.orgs.get(org_id=grants[0].org_id)
    assert org.id is not None
    member = await repo.members.by_external(org_id=org.id, external_id=external_id)
    if (
        not external_id
        or member is None
        or not await allowed(repo, grants, org.id, member.unit_id)
    ):
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
    today = local_day(clock.now(), org.timezone)
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
    message: Message, command: CommandObject, bot: Bot, repo: Repo, clock: Clock, visitor: Visitor
) -> None:
    """/export [csv] [DATE | FROM TO]: the scope's rows as .xlsx (or .csv)."""
    from storage.export import export_days  # openpyxl: not in every process's memory

    grants = await managed(repo, visitor)
    if not grants:
        await refuse(message)
        return
    org = await repo.orgs.get(org_id=grants[0].org_id)
    words = (command.args or "").split()
    as_csv = bool(words) and words[0].lower() == "csv"
    words = words[1:] if as_csv else words
    today = local_day(clock.now(), org.timezone)
    days = [parse_day(w, today) for w in words] or [today]
    if len(days) > 2 or any(d is None for d in days):
        await message.answer(
            _("Usage: /export [csv] [DATE | FROM TO], for example /export 2026-11-01 2026-11-28")
        )
        return
    first, last = days[0], days[-1]
    assert first is not None and last is not None
    scope = scope_of(grants[0])
    under = None if scope == ORG else [scope]
    try:
        export_days(first, last)
    except ValueError:
        await message.answer(_("Please choose at most 366 days, the first before the last."))
        return
    kind = "csv" if as_csv else "xlsx"
    # Made after the commit, off the event loop (bot.replies.Upload); `{rows}` is filled in then.
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
        subject=str(scope),
        detail=f"{first}..{last} {'csv' if as_csv else 'xlsx'}",
        now=clock.now(),
    )
