"""A member withdraws their consent (PIPL art. 15), from any channel: /withdraw says what it
means and asks to confirm; the confirmation stops collection at once (check-ins are refused,
reminders stop, managers see "withdrew consent" and stop counting the member as expected) and
the answers are erased after the organisation's grace period (at once with 0), unless a
manager recorded a legal hold. The roster entry, the consents and the audit trail stay.

The consent notice (`domain.conversation.enrolment`) takes its "How long" and "Your rights" from
here: each answer's period in the organisation's form, and when a withdrawal erases.

Adapters route `/withdraw` to `on_withdraw` and presses of `WithdrawKey` to `on_withdraw_press`
(outside any other conversation). The key carries the roster entry; the press is checked
against the presser's own enrolments, so a forged or stale key changes nothing."""

from __future__ import annotations

import html
from datetime import date
from typing import Annotated

from pydantic import Field

from domain import forms, retention
from domain.clock import local_day
from domain.conversation.common import on_stale_press
from domain.conversation.io import Ask, Option
from domain.conversation.keys import BadKey, Key
from domain.conversation.turn import Turn
from domain.i18n import _, current_language
from storage.models import Member, Organisation
from storage.repos.privacy import Held, erasure_due
from storage.scope import MAX_ROW_ID

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class WithdrawKey(Key, prefix="wdr"):
    """A press on the confirmation: withdraw from this enrolment (`yes`), or keep it."""

    member: RowId
    yes: bool


def withdrawn_text(org: Organisation, day: date | None) -> str:
    """What a member who withdrew is told when they try to take part again."""
    return _(
        "You withdrew your consent to {org} on {day}, so Daka no longer collects your "
        "check-ins. To take part again, please ask your counselor or village cadre."
    ).format(org=html.escape(org.name), day=day.isoformat() if day else "")


def grace_text(org: Organisation) -> str:
    if org.withdrawal_grace_days == 0:
        return _("Your answers are erased at once.")
    return _(
        "Your answers are erased after {days} days, unless your organisation must keep them "
        "by law (a legal hold, recorded with its reason)."
    ).format(days=org.withdrawal_grace_days)


def confirmation_text(org: Organisation) -> str:
    return _(
        "<b>Withdraw your consent to {org}?</b>\n\n"
        "• Daka stops collecting at once: no more check-ins, no more reminders.\n"
        "• Your counselor or cadre will see that you withdrew consent; you are no longer "
        "counted as missing.\n"
        "• {grace}\n"
        "• The days you already reported stay counted in the figures of those days, "
        "without your answers.\n"
        "• Your roster entry (member id and name) stays: it is your organisation's.\n\n"
        "You cannot undo this in the chat: to take part again, you would ask your counselor "
        "or village cadre."
    ).format(org=html.escape(org.name), grace=grace_text(org))


def periods_text(org: Organisation) -> str:
    """How long each answer of the organisation's form is kept, one line each (the consent
    notice's "How long")."""
    try:
        form = forms.load_form(org.form)
    except forms.FormError:
        return _("• every answer: {days} days").format(days=org.retain_days)
    lang = current_language()
    lines = []
    for period in retention.periods(form, org.retain_days):
        label = form.question(period.question).label(lang)
        if period.part is not None:
            label = _("{question}, the details you type").format(question=label)
        lines.append(
            _("• {answer}: {days} days").format(answer=html.escape(label), days=period.days)
        )
    return "\n".join(lines)


def erased_when(org: Organisation) -> str:
    if org.withdrawal_grace_days == 0:
        return _("at once")
    return _("{days} days later").format(days=org.withdrawal_grace_days)


async def org_of(turn: Turn, member: Member) -> Organisation:
    """The organisation of one of the visitor's enrolments (prefetched with the visitor)."""
    org = turn.visitor.orgs.get(member.org_id)
    return org if org is not None else await turn.repo.orgs.get(org_id=member.org_id)


async def on_withdraw(turn: Turn) -> None:
    """/withdraw: what withdrawing means, and the buttons to confirm it, for each enrolment
    still consented to."""
    members = turn.visitor.members
    if not members:
        await turn.out.say(_("You are not enrolled anywhere, so there is no consent to withdraw."))
        return
    consented = [m for m in members if m.withdrawn_at is None]
    if not consented:
        for member in members:
            org = await org_of(turn, member)
            await turn.out.say(withdrawn_text(org, member.withdrawn_day))
        return
    for member in consented:
        assert member.id is not None
        org = await org_of(turn, member)
        await turn.out.say(
            confirmation_text(org),
            [
                [Option(_("Yes, withdraw my consent"), key=_key(member.id, True))],
                [Option(_("No, keep taking part"), key=_key(member.id, False))],
            ],
        )


def _key(member_id: int, yes: bool) -> str:
    return WithdrawKey(member=member_id, yes=yes).pack()


async def on_withdraw_press(turn: Turn, key: str) -> None:
    """A press on the confirmation: re-checked against the presser's own enrolments."""
    try:
        pressed = WithdrawKey.unpack(key)
    except BadKey:
        await on_stale_press(turn)
        return
    member = next((m for m in turn.visitor.members if m.id == pressed.member), None)
    if member is None:
        await turn.out.notice(_("This button has expired."), alert=True)
        return
    org = await org_of(turn, member)
    await turn.out.notice()
    if member.withdrawn_at is not None:
        await turn.out.replace(withdrawn_text(org, member.withdrawn_day))
        return
    if not pressed.yes:
        await turn.out.replace(
            _("Nothing changed: you still take part in {org}.").format(org=html.escape(org.name))
        )
        return
    await withdraw(turn, member, org)


async def withdraw(turn: Turn, member: Member, org: Organisation) -> None:
    """Record the withdrawal, stop whatever check-in was under way, erase at once when the
    organisation gives no grace period, and say what happened."""
    repo, now = turn.repo, turn.clock.now()
    await repo.privacy.withdraw(member=member, org=org, actor=turn.visitor.actor, now=now)
    await turn.state.clear()
    await turn.out.replace(confirmation_text(org))  # the notice stays, its buttons go
    lines = [
        _(
            "Your consent to {org} is withdrawn. Daka will not ask you to check in any more."
        ).format(org=html.escape(org.name))
    ]
    due = erasure_due(member, org)
    if org.withdrawal_grace_days == 0:
        try:
            await repo.privacy.erase(
                member=member, actor=turn.visitor.actor, why="withdrawal", now=now
            )
            lines.append(_("Your answers have been erased."))
        except Held:
            lines.append(_("Your organisation must keep your answers for now (a legal hold)."))
    elif due is not None:
        lines.append(
            _("Your answers will be erased on {day}.").format(
                day=local_day(due, org.timezone).isoformat()
            )
        )
    lines.append(_("Send /mydata to see everything Daka still stores about you."))
    still = any(m.withdrawn_at is None for m in turn.visitor.members)
    await turn.out.say("\n".join(lines), ask=Ask.MENU if still else Ask.CLEAR)
