"""A member's own data: /today, /history and /mydata, only ever their own rows."""

from __future__ import annotations

import html
import json
from datetime import date, timedelta
from typing import Any

from domain import forms
from domain.checkin import GEOFENCE_REASON
from domain.clock import local_day, zone
from domain.conversation.common import member_and_org
from domain.conversation.drafts import StartCheckInKey
from domain.conversation.io import Ask, Option
from domain.conversation.turn import Turn, Visitor
from domain.i18n import _, current_language
from storage.models import Member, Organisation
from storage.repo import Repo
from storage.schedules import ScheduleRepo

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
    """Everything stored about the member (PIPL's right of access), and who may read it."""
    repo, visitor = turn.repo, turn.visitor
    stored = await personal_data(repo, visitor)
    readers: list[str] = []
    for member in visitor.members:
        org = await repo.orgs.get(org_id=member.org_id)
        grants = await ScheduleRepo(repo.session).managers_of_unit(
            org_id=member.org_id, unit_id=member.unit_id
        )
        for grant in grants:
            if grant.unit_id is None:
                readers.append(_("administrators of {org}").format(org=html.escape(org.name)))
            else:
                unit = await repo.units.get(unit_id=grant.unit_id)
                readers.append(_("managers of {unit}").format(unit=html.escape(unit.name_path)))
        await repo.audit.log(
            org_id=member.org_id,
            actor=visitor.actor,
            action="mydata",
            subject=member.external_id,
            now=turn.clock.now(),
        )
    payload = json.dumps(stored, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    await turn.out.file(MYDATA_FILE, payload, caption=_("Everything Daka stores about you."))
    who = "\n".join(f"• {r}" for r in dict.fromkeys(readers)) or _("Nobody but you.")
    await turn.out.say(_("<b>Who can read your check-ins</b>\n{who}").format(who=who))


async def personal_data(repo: Repo, visitor: Visitor) -> dict[str, Any]:
    """The account, every enrolment with all its check-ins, and the consents given."""
    account = visitor.account
    data: dict[str, Any] = {
        "identities": [{"channel": visitor.channel, "id": visitor.external_id}],
        "language": account.language if account else None,
        "enrolments": [],
        "consents": [],
    }
    for member in visitor.members:
        assert member.id is not None
        org = await repo.orgs.get(org_id=member.org_id)
        unit = await repo.units.get(unit_id=member.unit_id)
        checkins = await repo.checkins.history(
            member_id=member.id, since=date(1970, 1, 1), until=date(9999, 12, 31)
        )
        data["enrolments"].append(
            {
                "organisation": org.name,
                "unit": unit.name_path,
                "member_id": member.external_id,
                "name": member.name,
                "enrolled_at": member.enrolled_at,
                "check_ins": [
                    {
                        "day": c.local_day,
                        "submitted_at": c.submitted_at,
                        "version": c.version,
                        "latitude": c.latitude,
                        "longitude": c.longitude,
                        "accuracy_m": c.accuracy_m,
                        "place": [c.country, c.province, c.city],
                        "outside_geofence": c.outside_geofence,
                        "abnormal": c.abnormal,
                        "reasons": c.reasons,
                        "answers": c.answers,
                    }
                    for c in checkins
                ],
            }
        )
        consent = await repo.accounts.consent(
            account_id=visitor.account_id or 0, org_id=org.id or 0
        )
        if consent is not None:
            data["consents"].append(
                {
                    "organisation": org.name,
                    "version": consent.version,
                    "accepted": consent.accepted,
                    "at": consent.at,
                }
            )
    return data
