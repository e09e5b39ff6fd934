"""What enrolment says: the consent notice and the answers about invites, roster rows and
lock-outs (the conversation is `domain.conversation.enrolment`)."""

from __future__ import annotations

import html
from datetime import datetime

from domain.clock import zone
from domain.enrolment import InviteProblem
from domain.i18n import _
from storage.models import TELEGRAM, Member, Organisation


def problem_text(problem: InviteProblem) -> str:
    return {
        InviteProblem.MALFORMED: _(
            "This link is not a valid invite. Please open the exact link you were sent."
        ),
        InviteProblem.UNKNOWN: _(
            "This invite does not exist. Please check the link, or ask for a new one."
        ),
        InviteProblem.EXPIRED: _("This invite has expired. Please ask for a new link."),
        InviteProblem.REVOKED: _("This invite was withdrawn. Please ask for a new link."),
        InviteProblem.USED_UP: _(
            "This invite has already been used as many times as allowed. "
            "Please ask for a new link."
        ),
    }[problem]


def app_name(channel: str) -> str:
    """The app people write from, as they call it."""
    names = {TELEGRAM: _("Telegram"), "wecom": _("WeCom")}
    return names.get(channel, channel)


def consent_text(org: Organisation, role: str, channel: str = TELEGRAM) -> str:
    if channel == TELEGRAM:
        what = (
            _(
                "• your location when you check in, and your answers to the daily questions "
                "(such as temperature and symptoms), and a photo if you send one;\n"
                "• your member id and name, to match you with the roster;\n"
                "• your Telegram id, to send you reminders."
            )
            if role == "member"
            else _("• your Telegram id and name, and what you look at, for the audit trail.")
        )
    else:
        what = (
            _(
                "• your location when you check in, and your answers to the daily questions "
                "(such as temperature and symptoms), and a photo if you send one;\n"
                "• your member id and name, to match you with the roster;\n"
                "• your {app} user id, to send you reminders."
            )
            if role == "member"
            else _("• your {app} user id and name, and what you look at, for the audit trail.")
        ).format(app=app_name(channel))
    return _(
        "<b>{org}: daily check-in — how we use your information</b>\n\n"
        "<b>What we collect</b>\n{what}\n\n"
        "<b>Why</b>\nFor the daily health and whereabouts report of your school or village.\n\n"
        "<b>Who sees it</b>\nYou, and the counselors or cadres responsible for your class or "
        "village and their superiors. Nobody else.\n\n"
        "<b>How long</b>\nExact coordinates and photos are deleted after {days} days; "
        "the daily status is kept for the records.\n\n"
        "You can ask for everything stored about you at any time. Do you agree?"
    ).format(org=html.escape(org.name), what=what, days=org.retain_days)


def lock_text(until: datetime, tz: str) -> str:
    return _("Too many wrong answers. Please try again after {time}.").format(
        time=until.astimezone(zone(tz)).strftime("%H:%M")
    )


def welcome_text(member: Member, org: Organisation) -> str:
    return _(
        "Welcome, {name}! You are enrolled in {org}. Check in once a day with the button "
        "below or /checkin."
    ).format(name=html.escape(member.name), org=html.escape(org.name))


def taken_text(channel: str) -> str:
    if channel == TELEGRAM:
        return _(
            "This member id is already linked to another Telegram account. If that is not "
            "you, please contact your counselor or village cadre."
        )
    return _(
        "This member id is already linked to another account. If that is not you, please "
        "contact your counselor or village cadre."
    )
