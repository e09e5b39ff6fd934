"""/trend [days]: a chart of the caller's scope over the last days — the reporting rate and the
abnormal count per day — for counselors, cadres and administrators."""

from __future__ import annotations

import asyncio
import html

from aiogram import Bot
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.types import BufferedInputFile, Message

from domain.clock import Clock
from domain.conversation.turn import Visitor
from domain.i18n import _
from handlers.telegram.gate import managers_router
from storage.charts import MAX_DAYS, render_trend, trend_series
from storage.models import Unit
from storage.repo import Repo
from storage.scope import Scope

router = managers_router("trend")

DEFAULT_DAYS = 14


def parse_days(text: str | None) -> int | None:
    """The number of days asked for (the default without one), or None when it is no whole
    number from 1 to MAX_DAYS."""
    if text is None or not text.strip():
        return DEFAULT_DAYS
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


@router.message(Command("trend"), StateFilter(None))
async def on_trend(
    message: Message,
    command: CommandObject,
    bot: Bot,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    scope: Scope,
) -> None:
    days = parse_days(command.args)
    if days is None:
        await message.answer(
            _("Please give a number of days from 1 to {most}, for example /trend 30.").format(
                most=MAX_DAYS
            )
        )
        return
    org = scope.org
    tops = await scope.tops(repo.session)
    name = scope_name(scope, tops)
    last = scope.today(clock)
    under = await scope.under(repo.session)
    series = await trend_series(repo.session, org=org, under=under, last=last, days=days)
    first = series[0][0]
    heading = _("{scope}, {first} to {last}")
    png = await asyncio.to_thread(
        render_trend,
        series,
        title=heading.format(scope=name, first=first, last=last),
        rate_label=_("Reporting rate"),
        abnormal_label=_("Abnormal count"),
    )
    await bot.send_photo(
        message.chat.id,
        BufferedInputFile(png, filename="trend.png"),
        caption="📈 "
        + heading.format(scope=html.escape(name), first=first, last=last)
        + "\n"
        + _("Grey days: nobody was expected to check in."),
    )
    await repo.audit.log(
        org_id=org.id,
        actor=str(visitor.telegram_id),
        action="trend",
        subject=scope.label,
        detail=f"{first}..{last}",
        now=clock.now(),
    )
