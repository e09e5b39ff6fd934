"""Retention (PIPL): after an organisation's `retain_days`, exact coordinates, accuracy and photos
leave a check-in; its place name, status and the answers the figures need stay."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain import forms
from domain.clock import local_day
from storage.models import CheckIn, CheckInRevision, Organisation

log = logging.getLogger(__name__)

SENSITIVE_KINDS = ("location", "photo")


def _strip(answers: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    return {k: (None if k in sensitive else v) for k, v in answers.items()}


async def apply_retention(
    session: AsyncSession, *, now: datetime, dry_run: bool = False
) -> dict[str, int]:
    """Clear what is past retention in every organisation; returns check-ins touched per slug."""
    touched: dict[str, int] = {}
    for org in (await session.exec(select(Organisation))).all():
        cutoff = local_day(now, org.timezone) - timedelta(days=org.retain_days)
        try:
            form = forms.load_form(org.form)
            sensitive = {q.id for q in form.questions if q.kind in SENSITIVE_KINDS}
        except forms.FormError:
            sensitive = set()
        rows = (
            await session.exec(
                select(CheckIn).where(
                    CheckIn.org_id == org.id,
                    CheckIn.local_day < cutoff,
                    col(CheckIn.latitude).is_not(None)
                    | col(CheckIn.accuracy_m).is_not(None)
                    | col(CheckIn.answers).is_not(None),
                )
            )
        ).all()
        count = 0
        for checkin in rows:
            stripped = _strip(checkin.answers, sensitive)
            if (
                checkin.latitude is None
                and checkin.accuracy_m is None
                and (stripped == checkin.answers)
            ):
                continue
            count += 1
            if dry_run:
                continue
            checkin.latitude = checkin.longitude = checkin.accuracy_m = None
            checkin.answers = stripped
            revisions = (
                await session.exec(
                    select(CheckInRevision).where(
                        CheckInRevision.member_id == checkin.member_id,
                        CheckInRevision.local_day == checkin.local_day,
                    )
                )
            ).all()
            for revision in revisions:
                revision.answers = _strip(revision.answers, sensitive)
        if count:
            touched[org.slug] = count
        verb = "would clear" if dry_run else "cleared"
        log.info("retention %s: %s %d check-ins before %s", org.slug, verb, count, cutoff)
    await session.flush()
    return touched
