"""Enrolment: an invite code, the consent notice, then the member id and name checked against the
roster (or, for a manager's or administrator's invite, the role it grants).

The rules (well-formed codes, lock-out, name matching) are `domain.enrolment`; this is the
conversation around them. Nothing is said about a roster row before both the id and the name
match it, so the bot never reveals a name for an id. (Enrolment without an invite, where a
channel's user ids are the member ids: `domain.conversation.direct`.)"""

from __future__ import annotations

import html
from datetime import datetime

from domain import enrolment
from domain.clock import zone
from domain.conversation import privacy
from domain.conversation.common import on_stale_press
from domain.conversation.consent import direct_org, taken_text, welcome_text, what_we_collect
from domain.conversation.io import Ask, Option, Options, Text
from domain.conversation.keys import BadKey, Key
from domain.conversation.privacy import withdrawn_text
from domain.conversation.turn import Turn
from domain.delivery import TELEGRAM
from domain.enrolment import InviteProblem
from domain.i18n import LOCALE_OF, _
from domain.i18n import current as translator
from storage.models import Account, Invite, Organisation
from storage.repo import Repo

# Conversation states (the names the Telegram adapter's `Enrol` StatesGroup gives them).
CONSENT = "Enrol:consent"
MEMBER_ID = "Enrol:member_id"
NAME = "Enrol:name"
STATES = (CONSENT, MEMBER_ID, NAME)


class ConsentKey(Key, prefix="consent"):
    """A press on the consent notice; `code` ties it to the invite being answered."""

    accept: bool
    code: str


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


async def check_invite(repo: Repo, code: str, now: datetime) -> Invite | InviteProblem:
    """The usable invite behind `code`, or why it cannot be used."""
    if not enrolment.code_is_well_formed(code):
        return InviteProblem.MALFORMED
    invite = await repo.invites.get(code=code)
    if invite is None:
        return InviteProblem.UNKNOWN
    problem = enrolment.invite_problem(
        expires_at=invite.expires_at,
        revoked_at=invite.revoked_at,
        max_uses=invite.max_uses,
        uses=invite.uses,
        now=now,
    )
    return problem if problem is not None else invite


def consent_text(org: Organisation, role: str, channel: str = TELEGRAM) -> str:
    what = what_we_collect(role, channel)
    return _(
        "<b>{org}: daily check-in — how we use your information</b>\n\n"
        "<b>What we collect</b>\n{what}\n\n"
        "<b>Why</b>\nFor the daily health and whereabouts report of your school or village.\n\n"
        "<b>Who sees it</b>\nYou, and the counselors or cadres responsible for your class or "
        "village and their superiors. Nobody else.\n\n"
        "<b>How long</b>\nEach answer is deleted once its period is over:\n{periods}\n"
        "The day's status (checked in or not, abnormal or not) and the place name (province "
        "and city) are kept for the records.\n\n"
        "<b>Your rights</b>\n/mydata sends you everything stored about you, at any time. "
        "/withdraw withdraws your consent: the check-ins stop, and your answers are erased "
        "{erased}.\n\n"
        "Do you agree?"
    ).format(
        org=html.escape(org.name),
        what=what,
        periods=privacy.periods_text(org),
        erased=privacy.erased_when(org),
    )


def consent_options(code: str) -> Options:
    return [
        [
            Option(_("✅ I agree"), key=ConsentKey(accept=True, code=code).pack()),
            Option(_("❌ I decline"), key=ConsentKey(accept=False, code=code).pack()),
        ]
    ]


def lock_text(until: datetime, tz: str) -> str:
    return _("Too many wrong answers. Please try again after {time}.").format(
        time=until.astimezone(zone(tz)).strftime("%H:%M")
    )


async def on_start(turn: Turn) -> None:
    """/start without a code: a welcome that fits who is writing."""
    member = turn.visitor.member
    if member is not None and member.withdrawn_at is not None:
        org = await privacy.org_of(turn, member)
        await turn.out.say(withdrawn_text(org, member.withdrawn_day), ask=Ask.CLEAR)
    elif member is not None:
        await turn.out.say(
            _("Welcome back, {name}! Send /checkin to check in for today.").format(
                name=html.escape(member.name)
            ),
            ask=Ask.MENU,
        )
    elif turn.visitor.roles:
        await turn.out.say(_("Welcome back! Send /help to see what you can do."))
    else:
        await turn.out.say(
            _(
                "Hello! I am the daily check-in bot. To enrol, open the invite link "
                "from your counselor or village cadre."
            )
        )


async def on_invite(turn: Turn, code: str) -> None:
    """An invite code (Telegram: `/start CODE` from the link): the consent notice, or why not."""
    now = turn.clock.now()
    found = await check_invite(turn.repo, code.strip(), now)
    if isinstance(found, InviteProblem):
        await turn.out.say(problem_text(found))
        return
    org = await turn.repo.orgs.get(org_id=found.org_id)
    account = await turn.visitor.ensure_account(turn.repo, now)
    if account.language is None and turn.person.language is None:
        # The channel's language is not one we speak: the organisation's default applies.
        account.language = org.language
    i18n = translator()
    with i18n.use_locale(LOCALE_OF.get(account.language or "", i18n.current_locale)):
        await offer_consent(turn, found, org, account, now)


async def offer_consent(
    turn: Turn, found: Invite, org: Organisation, account: Account, now: datetime
) -> None:
    if enrolment.locked(account.locked_until, now):
        assert account.locked_until is not None
        await turn.out.say(lock_text(account.locked_until, org.timezone))
        return
    if found.role == "member":
        mine = next((m for m in turn.visitor.members if m.org_id == org.id), None)
        if mine is not None and mine.withdrawn_at is not None:
            await turn.state.clear()
            await turn.out.say(withdrawn_text(org, mine.withdrawn_day))
            return
        if mine is not None:
            await turn.state.clear()
            await turn.out.say(
                _(
                    "You are already enrolled in {org} as {name}. Send /checkin to check in."
                ).format(org=html.escape(org.name), name=html.escape(mine.name)),
                ask=Ask.MENU,
            )
            return
    await turn.state.clear()
    await turn.state.set_state(CONSENT)
    await turn.state.update_data(code=found.code)
    await turn.out.say(
        consent_text(org, found.role, turn.person.channel), consent_options(found.code)
    )


async def on_consent(turn: Turn, key: str) -> str | None:
    """A press on the consent notice (in the consent state). Returns the role an accepted
    manager's or administrator's invite granted, so the channel can offer their commands."""
    try:
        pressed = ConsentKey.unpack(key)
    except BadKey:
        await on_stale_press(turn)
        return None
    data = await turn.state.get_data()
    if data.get("code") != pressed.code:
        await turn.out.notice(_("This button has expired."), alert=True)
        return None
    if direct_org(pressed.code) is not None:  # no invite: the organisation's own ids
        from domain.conversation.direct import on_direct_consent  # it builds on this module

        await on_direct_consent(turn, direct_org(pressed.code) or 0, accept=pressed.accept)
        return None
    now = turn.clock.now()
    found = await check_invite(turn.repo, pressed.code, now)
    await turn.out.notice()
    if isinstance(found, InviteProblem):
        await turn.state.clear()
        await turn.out.say(problem_text(found))
        return None
    await turn.repo.accounts.record_consent(
        account_id=(await turn.visitor.ensure_account(turn.repo, now)).id or 0,
        org_id=found.org_id,
        version=enrolment.CONSENT_VERSION,
        accepted=pressed.accept,
        now=now,
    )
    org = await turn.repo.orgs.get(org_id=found.org_id)
    # The notice stays, its buttons go.
    await turn.out.replace(consent_text(org, found.role, turn.person.channel))
    if not pressed.accept:
        await turn.state.clear()
        await turn.out.say(
            _(
                "Understood. Nothing about you has been stored. If you change your mind, "
                "open the invite link again."
            )
        )
        return None
    if found.role in ("manager", "admin"):
        return await grant_role(turn, found, now)
    await turn.state.set_state(MEMBER_ID)
    await turn.out.say(
        _("Thank you. Please send your member id (student or resident number)."),
        ask=Ask.CLEAR,
    )
    return None


async def grant_role(turn: Turn, invite: Invite, now: datetime) -> str | None:
    await turn.state.clear()
    if not await turn.repo.invites.use(code=invite.code):
        await turn.out.say(problem_text(InviteProblem.USED_UP))
        return None
    await turn.repo.roles.grant(
        org_id=invite.org_id,
        account_id=(await turn.visitor.ensure_account(turn.repo, now)).id or 0,
        unit_id=invite.unit_id,
        role=invite.role,
        now=now,
    )
    scope = _("the whole organisation")
    if invite.unit_id is not None:
        scope = html.escape((await turn.repo.units.get(unit_id=invite.unit_id)).name_path)
    await turn.repo.audit.log(
        org_id=invite.org_id,
        actor=turn.visitor.actor,
        action=f"role.grant.{invite.role}",
        subject=scope,
        detail=f"invite {invite.code[:6]}…",
        now=now,
    )
    text = (
        _("You are now an administrator of {scope}.")
        if invite.role == "admin"
        else _("You are now a manager of {scope}.")
    )
    await turn.out.say(text.format(scope=scope))
    return invite.role


async def on_member_id(turn: Turn, text: Text) -> None:
    """The member id, typed (in the member id state)."""
    if text.text.startswith("/"):
        await on_enrol_other(turn)
        return
    member_id = enrolment.normalise_member_id(text.text)
    if not member_id or len(member_id) > 64:
        await turn.out.say(_("Please send your member id as text, for example 2024010203."))
        return
    await turn.state.update_data(member_id=member_id)
    await turn.state.set_state(NAME)
    await turn.out.say(_("Now send your full name, as it appears on the roster."))


async def on_name(turn: Turn, text: Text) -> None:
    """The full name (in the name state): binds the account to the roster row when the id and
    the name match it, within the invite's unit; counts the failures towards a lock-out."""
    if text.text.startswith("/"):
        await on_enrol_other(turn)
        return
    repo, visitor, now = turn.repo, turn.visitor, turn.clock.now()
    data = await turn.state.get_data()
    found = await check_invite(repo, str(data.get("code", "")), now)
    if isinstance(found, InviteProblem):
        await turn.state.clear()
        await turn.out.say(problem_text(found))
        return
    org = await repo.orgs.get(org_id=found.org_id)
    account = await visitor.ensure_account(repo, now)
    if enrolment.locked(account.locked_until, now):
        assert account.locked_until is not None
        await turn.state.clear()
        await turn.out.say(lock_text(account.locked_until, org.timezone))
        return
    external_id = str(data.get("member_id", ""))
    member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
    in_scope = member is not None and member.active
    if member is not None and in_scope and found.unit_id is not None:
        unit = await repo.units.get(unit_id=member.unit_id)
        invite_unit = await repo.units.get(unit_id=found.unit_id)
        in_scope = unit.path.startswith(invite_unit.path)
    if member is None or not in_scope or not enrolment.names_match(member.name, text.text):
        await repo.accounts.record_attempt(
            account_id=account.id or 0,
            org_id=org.id or 0,
            external_id=external_id,
            outcome="mismatch",
            now=now,
        )
        account.failed_attempts, account.locked_until = enrolment.after_failure(
            account.failed_attempts, now
        )
        if account.locked_until is not None:
            await turn.state.clear()
            await turn.out.say(lock_text(account.locked_until, org.timezone))
            return
        await turn.state.set_state(MEMBER_ID)
        await turn.out.say(
            _(
                "That member id and name do not match our roster. Please check both and send "
                "your member id again."
            )
        )
        return
    if member.account_id is not None and member.account_id != account.id:
        await repo.accounts.record_attempt(
            account_id=account.id or 0,
            org_id=org.id or 0,
            external_id=external_id,
            outcome="taken",
            now=now,
        )
        await repo.audit.log(
            org_id=org.id,
            actor=visitor.actor,
            action="enrol.refused.taken",
            subject=external_id,
            now=now,
        )
        await turn.state.clear()
        await turn.out.say(taken_text(turn.person.channel))
        return
    if not await repo.invites.use(code=found.code):
        await turn.state.clear()
        await turn.out.say(problem_text(InviteProblem.USED_UP))
        return
    await repo.members.bind(member=member, account_id=account.id or 0, now=now)
    account.failed_attempts, account.locked_until = 0, None
    await repo.accounts.record_attempt(
        account_id=account.id or 0,
        org_id=org.id or 0,
        external_id=external_id,
        outcome="enrolled",
        now=now,
    )
    await turn.state.clear()
    await turn.out.say(welcome_text(member, org), ask=Ask.MENU)


async def on_enrol_other(turn: Turn) -> None:
    """Stickers, photos, commands while an id or a name is awaited: say what is expected."""
    if await turn.state.get_state() == MEMBER_ID:
        await turn.out.say(
            _("I need your member id as text. Send it, or /cancel to stop enrolling.")
        )
    else:
        await turn.out.say(_("I need your full name as text. Send it, or /cancel to stop."))


async def on_consent_pending(turn: Turn) -> None:
    """Anything but a press while the consent notice waits: show the notice again."""
    code = str((await turn.state.get_data()).get("code", ""))
    org_id = direct_org(code)
    invite = await turn.repo.invites.get(code=code) if org_id is None else None
    if org_id is None and invite is None:
        await turn.state.clear()
        await turn.out.say(problem_text(InviteProblem.UNKNOWN))
        return
    org = await turn.repo.orgs.get(org_id=invite.org_id if invite else org_id or 0)
    await turn.out.say(_("Please answer the consent notice first:"))
    role = invite.role if invite else "member"
    await turn.out.say(consent_text(org, role, turn.person.channel), consent_options(code))
