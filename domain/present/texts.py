"""What Daka says unasked: reminders, missing lists, alerts and daily reports, in the
recipient's language (texts in the gettext catalogs like every other user-facing string).

The scheduler's rounds, the letters written when something happens (an alert, a nudge) and the
managers' views all say these, so they live here, beside neither. Texts are in Daka's light
markup: escaped text with <b>, <i>, <code> and <a href>, which each channel renders."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from domain import forms
from domain.checkin import GEOFENCE_REASON
from domain.i18n import _
from domain.status import Figures

LIMIT = 3500  # Telegram allows 4096 characters; leave room for the header of each part


class Listed(Protocol):
    """A member's day as the lists show it (`storage.aggregates.MemberDay` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def external_id(self) -> str: ...
    @property
    def unit_path(self) -> str: ...
    @property
    def unreachable(self) -> bool: ...
    @property
    def reasons(self) -> Sequence[str]: ...


def checkin_button() -> str:
    return _("✅ Check in now")


def whole_organisation() -> str:
    return _("the whole organisation")


def reminder_text(name: str, day: date) -> str:
    return _("⏰ {name}, you have not checked in today ({day}) yet. Please check in now.").format(
        name=html.escape(name), day=day.isoformat()
    )


def reasons_text(reasons: Sequence[str], form_name: str, lang: str) -> str:
    try:
        form = forms.load_form(form_name)
    except forms.FormError:
        return ", ".join(reasons)
    labels = []
    known = {q.id for q in form.questions}
    for reason in reasons:
        if reason == GEOFENCE_REASON:
            labels.append(_("outside the area"))
        elif reason in known:
            labels.append(form.question(reason).label(lang))
    return ("、" if lang == "zh" else ", ").join(labels)


def rate_text(figures: Figures) -> str:
    return "—" if figures.rate is None else f"{figures.rate:.0%}"


def figures_line(f: Figures) -> str:
    """A unit's figures on one line; check-ins on a day off of the member's unit, and members
    who withdrew their consent, are named apart, outside the expected and the rate."""
    line = _(
        "{name}: expected {expected}, reported {reported} ({rate}), missing {missing}, "
        "abnormal {abnormal}, excused {excused}, not enrolled {not_enrolled}, "
        "unreachable {unreachable}"
    ).format(
        name=html.escape(f.name),
        expected=f.expected,
        reported=f.reported,
        rate=rate_text(f),
        missing=f.missing,
        abnormal=f.abnormal,
        excused=f.excused,
        not_enrolled=f.not_enrolled,
        unreachable=f.unreachable,
    )
    if f.voluntary:
        line += _(", checked in on a day off {voluntary}").format(voluntary=f.voluntary)
    if f.withdrawn:
        line += _(", withdrew consent {withdrawn}").format(withdrawn=f.withdrawn)
    return line


def report_text(
    *,
    org_name: str,
    scope_name: str,
    day: date,
    counted: bool,
    whole: Figures,
    children: Sequence[Figures],
    abnormal: Sequence[Listed],
    form_name: str,
    lang: str,
) -> list[str]:
    """The daily report, split into messages that fit; the first part carries the figures."""
    lines = [
        _("📊 <b>Daily report {day}</b> — {org} · {scope}").format(
            day=day.isoformat(), org=html.escape(org_name), scope=html.escape(scope_name)
        ),
        "",
    ]
    if not counted:
        lines.append(_("Today is not a check-in day (holiday or day off)."))
    lines.append(figures_line(whole))
    if whole.all_zero:
        lines.append(_("Zero report: every figure is 0 today."))
    if children:
        lines += ["", _("<b>By unit</b>")]
        lines += [f"• {figures_line(f)}" for f in children]
    if abnormal:
        lines += ["", _("<b>Abnormal</b>")]
        for m in abnormal:
            # An erased member's check-in stays abnormal, without its reasons.
            why = reasons_text(m.reasons, form_name, lang)
            lines.append(
                f"• {html.escape(m.name)} ({html.escape(m.unit_path)})"
                + (f": {html.escape(why)}" if why else "")
            )
    else:
        lines += ["", _("No abnormal check-ins.")]
    return split(lines)


def missing_text(
    *,
    scope_name: str,
    day: date,
    missing: Sequence[Listed],
    not_enrolled: Sequence[Listed] = (),
) -> list[str]:
    """The cutoff list of who has still not checked in, with who cannot be reached; then who
    never enrolled (they cannot be reminded: someone has to reach them another way)."""
    header = _("📋 <b>Still missing at cutoff, {day}</b> — {scope}: {count}").format(
        day=day.isoformat(), scope=html.escape(scope_name), count=len(missing)
    )
    lines = [header]
    if not missing:
        lines.append(_("Everybody expected has checked in. 🎉"))
    else:
        lines.append("")
    for m in missing:
        mark = _(" — unreachable (blocked the bot)") if m.unreachable else ""
        lines.append(f"• {person(m)}{mark}")
    if not_enrolled:
        lines += [
            "",
            _("<b>Not enrolled</b> (cannot be reminded): {count}").format(count=len(not_enrolled)),
        ]
        lines += [f"• {person(m)}" for m in not_enrolled]
    return split(lines)


def person(m: Listed) -> str:
    return f"{html.escape(m.name)} ({html.escape(m.external_id)}, {html.escape(m.unit_path)})"


def abnormal_details(
    form_name: str, answers: dict[str, Any], reasons: Sequence[str], lang: str
) -> list[str]:
    """What made a check-in abnormal, one line per answer: "体温: 37.8 °C"."""
    try:
        form = forms.load_form(form_name)
    except forms.FormError:
        return list(reasons)
    known = {q.id for q in form.questions}
    details = []
    for reason in reasons:
        if reason == GEOFENCE_REASON:
            details.append(_("location outside the organisation's area"))
        elif reason in known:
            q = form.question(reason)
            details.append(f"{q.label(lang)}: {forms.format_answer(q, answers.get(reason), lang)}")
    return details


def alert_text(
    *, name: str, external_id: str, unit_path: str, day: date, details: Sequence[str]
) -> str:
    return _("⚠️ <b>Abnormal check-in</b> {day}: {name} ({id}, {unit})\n{details}").format(
        day=day.isoformat(),
        name=html.escape(name),
        id=html.escape(external_id),
        unit=html.escape(unit_path),
        details="\n".join(f"• {html.escape(d)}" for d in details),
    )


def split(lines: Sequence[str], limit: int = LIMIT) -> list[str]:
    """Join lines into messages of at most `limit` characters, breaking only between lines."""
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            parts.append("\n".join(current))
            current, size = [], 0
        current.append(line[:limit])
        size += len(line) + 1
    if current:
        parts.append("\n".join(current))
    return parts
