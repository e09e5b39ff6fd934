"""Letters for the outbox that more than the rounds write: a member's reminder (the rounds, and
a manager's nudge) and the alert of an abnormal check-in (written as the check-in is stored).

They live here, below both the channel adapters and the scheduler, so that neither imports the
other; the texts are `domain.present.texts`, the options `domain.keys`, and whom to tell is read
with the repositories. A person gets one letter on each of the given channels (the deployment's:
those with a courier) where they have an identity, in the language their account chose, or
their organisation's."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.i18n import LOCALE_OF, Translator
from domain.keys import CHECKIN_NOW, option
from domain.present import texts
from storage.models import Member, Organisation
from storage.repo import Repo
from storage.schedules import Letter, ScheduleRepo
from storage.slots import alert_slot


@dataclass(frozen=True, slots=True)
class Reminded:
    """A member to remind, and their account (where its identities are)."""

    member_id: int
    account_id: int | None
    name: str


async def reminder_letters(
    session: AsyncSession,
    i18n: Translator,
    *,
    org: Organisation,
    members: Sequence[Reminded],
    channels: Collection[str],
    day: date,
    slot: str,
) -> list[Letter]:
    """A reminder for each member on each of `channels` they are reached on (one query for
    all of them)."""
    assert org.id is not None
    reach = await Repo(session).accounts.reach(
        channels=channels, account_ids={m.account_id for m in members if m.account_id is not None}
    )
    letters = []
    with i18n.context():
        for member in members:
            if member.account_id is None:
                continue
            for contact in reach.get(member.account_id, ()):
                with i18n.use_locale(LOCALE_OF[contact.language or org.language]):
                    letters.append(
                        reminder_letter(
                            org_id=org.id,
                            channel=contact.channel,
                            address=contact.external_id,
                            member_id=member.member_id,
                            name=member.name,
                            day=day,
                            slot=slot,
                        )
                    )
    return letters


def reminder_letter(
    *,
    org_id: int,
    channel: str,
    address: str,
    member_id: int | None,
    name: str,
    day: date,
    slot: str,
) -> Letter:
    """A reminder to check in, with the button that starts it, in the current locale."""
    return Letter(
        org_id=org_id,
        channel=channel,
        address=address,
        member_id=member_id,
        kind="remind",
        day=day,
        slot=slot,
        text=texts.reminder_text(name, day),
        options=[[option(texts.checkin_button(), CHECKIN_NOW)]],
    )


async def alert_letters(
    session: AsyncSession,
    i18n: Translator,
    *,
    org: Organisation,
    member: Member,
    day: date,
    version: int,
    answers: dict[str, Any],
    reasons: Sequence[str],
    channels: Collection[str],
) -> list[Letter]:
    """An abnormal check-in, for every manager whose scope holds the member, on each of
    `channels` they are reached on."""
    assert org.id is not None and member.id is not None
    repo = Repo(session)
    unit = await repo.units.get(unit_id=member.unit_id)
    grants = await ScheduleRepo(session).managers_of_unit(org_id=org.id, unit_id=member.unit_id)
    # One alert a manager, however many of their grants hold the member.
    managers = list(dict.fromkeys(g.account_id for g in grants))
    reach = await repo.accounts.reach(channels=channels, account_ids=managers)
    letters = []
    with i18n.context():
        for account_id in managers:
            for contact in reach.get(account_id, ()):
                language = contact.language or org.language
                with i18n.use_locale(LOCALE_OF[language]):
                    text = texts.alert_text(
                        name=member.name,
                        external_id=member.external_id,
                        unit_path=unit.name_path,
                        day=day,
                        details=texts.abnormal_details(org.form, answers, reasons, language),
                    )
                letters.append(
                    Letter(
                        org_id=org.id,
                        channel=contact.channel,
                        address=contact.external_id,
                        kind="alert",
                        day=day,
                        slot=alert_slot(member.id, version),
                        text=text,
                    )
                )
    return letters
