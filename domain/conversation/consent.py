"""What enrolment says that depends on the channel people write from (the consent notice names
their id there), and the consent of a direct binding: an organisation whose channel user ids
are its member ids binds without an invite (`domain.conversation.direct`), and its consent
buttons carry the organisation ("@" and its id, which no invite code can equal) where an
invite's carry its code."""

from __future__ import annotations

import html
from typing import Final

from domain.delivery import TELEGRAM
from domain.i18n import _
from storage.models import Member, Organisation

DIRECT: Final = "@"


def direct_code(org_id: int) -> str:
    return f"{DIRECT}{org_id}"


def direct_org(code: str) -> int | None:
    """The organisation a direct binding's consent names; None for an invite's code."""
    rest = code.removeprefix(DIRECT)
    return int(rest) if rest != code and rest.isdigit() and len(rest) <= 12 else None


def app_name(channel: str) -> str:
    """The app people write from, as they call it."""
    names = {TELEGRAM: _("Telegram"), "wecom": _("WeCom")}
    return names.get(channel, channel)


def what_we_collect(role: str, channel: str) -> str:
    """The consent notice's list of what is kept, naming the person's id on `channel`."""
    if channel == TELEGRAM:
        return (
            _(
                "• your location when you check in, and your answers to the daily questions "
                "(such as temperature and symptoms), and a photo if you send one;\n"
                "• your member id and name, to match you with the roster;\n"
                "• your Telegram id, to send you reminders."
            )
            if role == "member"
            else _("• your Telegram id and name, and what you look at, for the audit trail.")
        )
    return (
        _(
            "• your location when you check in, and your answers to the daily questions "
            "(such as temperature and symptoms), and a photo if you send one;\n"
            "• your member id and name, to match you with the roster;\n"
            "• your {app} user id, to send you reminders."
        )
        if role == "member"
        else _("• your {app} user id and name, and what you look at, for the audit trail.")
    ).format(app=app_name(channel))


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


def not_on_roster_text(org: Organisation) -> str:
    return _(
        "Your account is not on the roster of {org}. Please ask your counselor or village "
        "cadre to add you, or enrol with an invite code."
    ).format(org=html.escape(org.name))
