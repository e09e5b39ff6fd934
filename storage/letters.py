"""Letters for the outbox that more than the rounds write: a member's reminder (the rounds, and
a manager's nudge) and the alert of an abnormal check-in (written as the check-in is stored).

They live here, below both the channel adapters and the scheduler, so that neither imports the
other; the texts are `domain.texts`, the options `domain.keys`, and whom to tell is read with
the repositories."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from domain import texts
from domain.i18n import LOCALE_OF, Translator
from domain.keys import CHECKIN_NOW, option
from storage.models import TELEGRAM, Member, Organisation
from storage.repo import Repo
from storage.schedules import Letter, ScheduleRepo


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
) -> list[Letter]:
    """An abnormal check-in, for every manager whose scope holds the member."""
    assert org.id is not None and member.id is not None
    repo = Repo(session)
    unit = await repo.units.get(unit_id=member.unit_id)
    grants = await ScheduleRepo(session).managers_of_unit(org_id=org.id, unit_id=member.unit_id)
    chats = await repo.accounts.contacts(
        channel=TELEGRAM, account_ids={g.account_id for g in grants}
    )
    letters = []
    for grant in grants:
        chat = chats.get(grant.account_id)
        if chat is None:
            continue
        language = chat.language or org.language
        with i18n.context(), i18n.use_locale(LOCALE_OF[language]):
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
                channel=TELEGRAM,
                address=chat.external_id,
                kind="alert",
                day=day,
                slot=f"m{member.id}v{version}",
                text=text,
            )
        )
    return letters
