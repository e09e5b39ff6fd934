"""The check-in's summary and what confirming it does: what the member checks, what is stored
(the answers and what they mean: place, geofence, abnormal reasons) and who is alerted."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from domain.checkin import GEOFENCE_REASON, derive
from domain.conversation.drafts import Draft, SummaryKey
from domain.conversation.io import Option
from domain.conversation.turn import Turn
from domain.forms import Form, format_answer
from domain.geo import Geofence
from domain.i18n import _, current_language
from domain.i18n import current as translator
from storage.letters import alert_letters as build_alert_letters
from storage.models import Member, Organisation
from storage.repo import Submission
from storage.schedules import Letter, OutboxRepo

if TYPE_CHECKING:
    from domain.conversation.checkin import Dialogue


def org_geofence(org: Organisation) -> Geofence | None:
    if org.geofence_lat is None or org.geofence_lon is None or not org.geofence_radius_m:
        return None
    return Geofence(org.geofence_lat, org.geofence_lon, org.geofence_radius_m)


def summary_text(form: Form, draft: Draft, lang: str, reasons: list[str]) -> str:
    lines = [_("<b>Please check your answers for {day}:</b>").format(day=draft.day.isoformat())]
    for q in form.questions:
        mark = " ⚠️" if q.id in reasons else ""
        shown = html.escape(format_answer(q, draft.answers.get(q.id), lang))
        lines.append(f"• {html.escape(q.label(lang))}: {shown}{mark}")
    if GEOFENCE_REASON in reasons:
        lines.append(_("⚠️ This location is outside your organisation's area."))
    return "\n".join(lines)


def summary_options(draft: Draft) -> list[list[Option]]:
    def option(label: str, action: str) -> Option:
        return Option(label, SummaryKey(draft=draft.id, action=action).pack())

    return [
        [option(_("✅ Confirm"), "confirm")],
        [option(_("✏️ Edit an answer"), "edit"), option(_("❌ Cancel"), "cancel")],
    ]


def edit_options(form: Form, draft: Draft) -> list[list[Option]]:
    """Which answer to change: one button per question, and back to the summary."""
    lang = current_language()
    rows = [
        [Option(q.label(lang), SummaryKey(draft=draft.id, action="pick", q=q.id).pack())]
        for q in form.questions
    ]
    rows.append([Option(_("« Back"), SummaryKey(draft=draft.id, action="back").pack())])
    return rows


async def confirm(
    dialogue: Dialogue,
    draft: Draft,
    *,
    wake: Callable[[], None] | None,
    recorded: Callable[[], None] | None,
) -> str:
    """Store the day's check-in (alerting managers if abnormal); returns what to tell the
    member."""
    turn, form, org, member = dialogue.turn, dialogue.form, dialogue.org, dialogue.member
    facts = derive(form, draft.answers, geofence=org_geofence(org), resolve=dialogue.resolve)
    place = facts.place
    checkin, amended = await turn.repo.checkins.submit(
        member=member,
        local_day=draft.day,
        form=form.name,
        form_version=form.version,
        submission=Submission(
            answers=draft.answers,
            abnormal=facts.abnormal,
            reasons=facts.reasons,
            latitude=facts.latitude,
            longitude=facts.longitude,
            accuracy_m=facts.accuracy_m,
            live=facts.live,
            country=place.country if place else None,
            province=place.province if place else None,
            city=place.city if place else None,
            outside_geofence=facts.outside_geofence,
        ),
        update_id=turn.update_id,
        now=turn.clock.now(),
        channel=turn.person.channel,
    )
    if recorded is not None:
        recorded()
    if facts.abnormal:
        letters = await alert_letters(
            turn,
            org=org,
            member=member,
            day=draft.day,
            version=checkin.version,
            answers=draft.answers,
            reasons=facts.reasons,
        )
        if await OutboxRepo(turn.repo.session).enqueue(letters, now=turn.clock.now()) and wake:
            wake()
    lang = current_language()
    head = (
        _("✅ Today's check-in updated (version {version}).").format(version=checkin.version)
        if amended
        else _("✅ Check-in recorded for {day}.").format(day=draft.day.isoformat())
    )
    if not facts.abnormal:
        return f"{head}\n" + _("All answers are normal. Thank you!")
    labels = [
        form.question(r).label(lang) if r != GEOFENCE_REASON else _("location outside the area")
        for r in facts.reasons
    ]
    body = _(
        "⚠️ Some answers are abnormal: {items}. Please take care, and contact your "
        "counselor or village cadre if you need help."
    ).format(items=html.escape("、".join(labels) if lang == "zh" else ", ".join(labels)))
    return f"{head}\n{body}"


async def alert_letters(
    turn: Turn,
    *,
    org: Organisation,
    member: Member,
    day: date,
    version: int,
    answers: dict[str, Any],
    reasons: Sequence[str],
) -> list[Letter]:
    """The managers' letters about an abnormal check-in, on the turn's channels
    (storage.letters builds them)."""
    return await build_alert_letters(
        turn.repo.session,
        translator(),
        org=org,
        member=member,
        day=day,
        version=version,
        answers=answers,
        reasons=reasons,
        channels=turn.letter_channels,
    )
