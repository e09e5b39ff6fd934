"""A member's own data: /today, /history and /mydata, only ever their own rows."""

from __future__ import annotations

import html
from datetime import date, timedelta
from typing import Any

from domain import forms
from domain.checkin import GEOFENCE_REASON
from domain.clock import local_day, zone
from domain.conversation.common import member_and_org
from domain.conversation.drafts import StartCheckInKey
from domain.conversation.io import Ask, Option
from domain.conversation.turn import Turn
from domain.i18n import _, current_language
from storage import owned
from storage.models import Member, Organisation

HISTORY_DAYS = 14
MYDATA_FILE = "daka-mydata.json"


async def member_today(turn: Turn) -> tuple[Member, Organisation, date] | None:
    """The sender's enrolment, organisation and local day; None after telling a stranger."""
    found = await member_and_org(turn.repo, turn.visitor)
    if found is None:
        await turn.out.say(_("You are not enrolled yet. Please open your invite link first."))
        return None
    member, org = found
    return member, org, local_day(turn.clock.now(), org.timezone)


async def on_today(turn: Turn) -> None:
    """What the member reported today, or a button to do it now."""
    found = await member_today(turn)
    if found is None:
        return
    member, org, today = found
    assert member.id is not None
    checkin = await turn.repo.checkins.for_day(member_id=member.id, local_day=today)
    if checkin is None:
        await turn.out.say(
            _("You have not checked in today ({day}) yet.").format(day=today.isoformat()),
            [[Option(_("✅ Check in now"), key=StartCheckInKey().pack())]],
        )
        return
    form = forms.load_form(checkin.form)
    lang = current_language()
    at = checkin.submitted_at.astimezone(zone(org.timezone)).strftime("%H:%M")
    lines = [_("<b>Today ({day})</b>: checked in at {time}.").format(day=today, time=at)]
    for q in form.questions:
        mark = " ⚠️" if q.id in checkin.reasons else ""
        value = html.escape(forms.format_answer(q, checkin.answers.get(q.id), lang))
        lines.append(f"• {html.escape(q.label(lang))}: {value}{mark}")
    if checkin.province or checkin.city:
        place = " ".join(dict.fromkeys(p for p in (checkin.province, checkin.city) if p))
        lines.append(_("• Place: {place}").format(place=html.escape(place)))
    if GEOFENCE_REASON in checkin.reasons:
        lines.append(_("⚠️ This location is outside your organisation's area."))
    if checkin.version > 1:
        lines.append(_("(updated {n} times)").format(n=checkin.version - 1))
    await turn.out.say("\n".join(lines), ask=Ask.MENU)


async def on_history(turn: Turn) -> None:
    """One line a day for the last 14 days (since enrolment): normal, abnormal and why, or
    missing."""
    found = await member_today(turn)
    if found is None:
        return
    member, org, today = found
    assert member.id is not None
    since = today - timedelta(days=HISTORY_DAYS - 1)
    if member.enrolled_at is not None:
        since = max(since, local_day(member.enrolled_at, org.timezone))
    rows = {
        c.local_day: c
        for c in await turn.repo.checkins.history(member_id=member.id, since=since, until=today)
    }
    lang = current_language()
    lines = [_("<b>Your last {n} days</b>").format(n=HISTORY_DAYS)]
    day = today
    while day >= since:
        checkin = rows.get(day)
        if checkin is None:
            status = _("not checked in") if day < today else _("not yet")
            lines.append(f"❌ {day.isoformat()} {status}")
        elif checkin.abnormal:
            form = forms.load_form(checkin.form)
            labels = [
                form.question(r).label(lang) if r != GEOFENCE_REASON else _("location")
                for r in checkin.reasons
                if r == GEOFENCE_REASON or r in {q.id for q in form.questions}
            ]
            what = html.escape(("、" if lang == "zh" else ", ").join(labels))
            lines.append(f"⚠️ {day.isoformat()} " + _("abnormal ({what})").format(what=what))
        else:
            lines.append(f"✅ {day.isoformat()} " + _("normal"))
        day -= timedelta(days=1)
    await turn.out.say("\n".join(lines), ask=Ask.MENU)


async def on_mydata(turn: Turn) -> None:
    """Everything stored about the person (PIPL's right of access) in one file, from the one
    registry of what a person owns (`storage.owned`), and which roles can read it; audited."""
    repo, visitor, now = turn.repo, turn.visitor, turn.clock.now()
    owner = await owned.owner_of_account(repo.session, visitor.account_id)
    stored = await owned.personal_data(repo.session, owner, now=now)
    for member in owner.members:
        await repo.audit.log(
            org_id=member.org_id,
            actor=visitor.actor,
            action="mydata",
            subject=member.external_id,
            now=now,
        )
    await turn.out.file(
        MYDATA_FILE, owned.as_json(stored), caption=_("Everything Daka stores about you.")
    )
    await turn.out.say(readers_text(stored["who_can_read"]))


def readers_text(readers: list[dict[str, Any]]) -> str:
    """Who can read the check-ins, by role and scope (never by name)."""
    lines = []
    for reader in readers:
        if reader["scope"] is None:
            line = _("administrators of {org}").format(org=html.escape(reader["organisation"]))
        else:
            line = _("managers of {unit}").format(unit=html.escape(reader["scope"]))
        lines.append(f"• {line}")
    who = "\n".join(dict.fromkeys(lines)) or _("Nobody but you.")
    return _("<b>Who can read your check-ins</b>\n{who}").format(who=who)
