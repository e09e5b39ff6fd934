"""Enrolment without an invite, for an organisation that declared a channel's user ids to be
its member ids (WeCom, where the corp gives each member their userid): someone who writes for
the first time gets the consent notice at once (`offer_direct`) and, once they agree, is bound
to the roster row of their id, with no id or name asked. Nothing is said about a roster row but
whether the person's own id is on it."""

from __future__ import annotations

from domain import enrolment
from domain.conversation.consent import (
    direct_code,
    not_on_roster_text,
    taken_text,
    welcome_text,
)
from domain.conversation.enrolment import CONSENT, consent_options, consent_text, lock_text
from domain.conversation.io import Ask
from domain.conversation.turn import Turn
from domain.i18n import LOCALE_OF, _
from domain.i18n import current as translator
from storage.models import Account, Member, Organisation


async def own_roster_row(turn: Turn, org: Organisation, account: Account | None) -> Member | None:
    """The roster row of `org` whose member id is the person's id on their channel, if it may
    be theirs (active, and bound to no other account); otherwise None, after saying why."""
    member = await turn.repo.members.by_external_folded(
        org_id=org.id or 0, external_id=turn.person.external_id
    )
    if member is None or not member.active:
        await turn.out.say(not_on_roster_text(org))
        return None
    if member.account_id is not None and (account is None or member.account_id != account.id):
        await turn.out.say(taken_text(turn.person.channel))
        return None
    return member


async def offer_direct(turn: Turn, org: Organisation) -> None:
    """First contact with an organisation whose members' ids on this channel are their member
    ids: the consent notice, whose acceptance binds them (`on_direct_consent`); someone not on
    its roster is told so, and nothing is kept."""
    now = turn.clock.now()
    if await own_roster_row(turn, org, turn.visitor.account) is None:
        return
    account = await turn.visitor.ensure_account(turn.repo, now)
    if account.language is None and turn.person.language is None:
        account.language = org.language
    i18n = translator()
    with i18n.use_locale(LOCALE_OF.get(account.language or "", i18n.current_locale)):
        if enrolment.locked(account.locked_until, now):
            assert account.locked_until is not None
            await turn.out.say(lock_text(account.locked_until, org.timezone))
            return
        code = direct_code(org.id or 0)
        await turn.state.clear()
        await turn.state.set_state(CONSENT)
        await turn.state.update_data(code=code)
        await turn.out.say(consent_text(org, "member", turn.person.channel), consent_options(code))


async def on_direct_consent(turn: Turn, org_id: int, *, accept: bool) -> None:
    """The answer to a direct binding's consent notice: agreed, the person is bound to the
    roster row of their id (checked again: the roster may have changed meanwhile)."""
    repo, now = turn.repo, turn.clock.now()
    await turn.out.notice()
    org = await repo.orgs.get(org_id=org_id)
    account = await turn.visitor.ensure_account(repo, now)
    await repo.accounts.record_consent(
        account_id=account.id or 0,
        org_id=org_id,
        version=enrolment.CONSENT_VERSION,
        accepted=accept,
        now=now,
    )
    await turn.out.replace(consent_text(org, "member", turn.person.channel))
    await turn.state.clear()
    if not accept:
        await turn.out.say(
            _(
                "Understood. Nothing about you has been stored. If you change your mind, "
                "write to me again."
            )
        )
        return
    member = await own_roster_row(turn, org, account)
    if member is None:
        return
    await repo.members.bind(member=member, account_id=account.id or 0, now=now)
    await repo.accounts.record_attempt(
        account_id=account.id or 0,
        org_id=org_id,
        external_id=member.external_id,
        outcome="enrolled",
        now=now,
    )
    turn.visitor.members.append(member)
    await turn.out.say(welcome_text(member, org), ask=Ask.MENU)
