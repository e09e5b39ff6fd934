"""Retention (PIPL art. 19): each answer leaves its check-in, and every revision of it, once the
period its form gives it is over (`domain.retention`); the coordinates go with the location's
period, and a photo kept of an answer (storage.repos.photos) with that answer, as do the photos
of drafts never submitted after a day. The day's status, whether it was abnormal and its place
name stay, so the figures of
past days do not change. What was cleared is written to the audit trail, per organisation and
per answer; a member under a legal hold keeps everything until the hold is cleared.

Each check-in remembers the longest period already applied to it (`retention_applied`), so a
run reads only the check-ins that have crossed a period since the last one, a batch at a time."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain import forms, retention
from domain.clock import local_day
from domain.forms import Form
from domain.retention import Period
from storage.models import CheckIn, CheckInRevision, Member, Organisation
from storage.repos.audit import AuditRepo
from storage.repos.photos import PhotoRepo

log = logging.getLogger(__name__)

BATCH = 500
ACTOR = "retention"  # who clears, in the audit trail
COORDINATES = "coordinates"  # the audit trail's name for latitude, longitude and accuracy
UNSUBMITTED = "unsubmitted photos"  # the audit trail's name for photos of drafts given up


@dataclass(frozen=True)
class Rules:
    """What a check-in of one form loses at which age, in one organisation."""

    form: Form | None  # None: a form no longer shipped (every answer gets the default)
    periods: tuple[Period, ...]
    coordinate_days: int


@dataclass
class Cleared:
    """One organisation's run: the check-ins changed, and how many of each answer went."""

    checkins: int = 0
    answers: Counter[str] = field(default_factory=Counter)

    def detail(self) -> str:
        """For the audit trail: "12 check-ins: coordinates 12, location 12, photo 3"."""
        parts = ", ".join(f"{name} {n}" for name, n in sorted(self.answers.items()))
        return (f"{self.checkins} check-ins" + (f": {parts}" if parts else ""))[:1000]


class OrgRetention:
    """The periods of one organisation's forms, for its default `retain_days`."""

    def __init__(self, org: Organisation) -> None:
        self.org = org
        self._rules: dict[str, Rules] = {}

    def rules(self, form_name: str) -> Rules:
        if form_name not in self._rules:
            default = self.org.retain_days
            try:
                form: Form | None = forms.load_form(form_name)
            except forms.FormError:
                form = None
            if form is None:
                days = min(default, forms.DEFAULT_MAX_RETAIN_DAYS)
                self._rules[form_name] = Rules(None, (), days)
            else:
                self._rules[form_name] = Rules(
                    form,
                    retention.periods(form, default),
                    retention.coordinate_days(form, default),
                )
        return self._rules[form_name]

    def thresholds(self) -> list[int]:
        """Every age at which something of this organisation's check-ins may go: the periods
        of each shipped form and of the organisation's own."""
        found: set[int] = set()
        for name in {*forms.available_forms(), self.org.form}:
            rules = self.rules(name)
            found.update(p.days for p in rules.periods)
            found.add(rules.coordinate_days)
        return sorted(found)

    def periods_of(self, rules: Rules, answers: dict[str, Any]) -> tuple[Period, ...]:
        if rules.form is not None:
            return rules.periods
        return tuple(Period(qid, rules.coordinate_days) for qid in answers)


async def apply_retention(
    session: AsyncSession, *, now: datetime, dry_run: bool = False
) -> dict[str, int]:
    """Clear what is past its period in every organisation; returns the check-ins changed (or,
    with `dry_run`, that would be) per organisation's slug."""
    touched: dict[str, int] = {}
    for org in (await session.exec(select(Organisation).order_by(col(Organisation.id)))).all():
        today = local_day(now, org.timezone)
        cleared = await _clear_org(session, org, today, dry_run=dry_run)
        if not dry_run:
            assert org.id is not None
            # A draft lives one local day: its photos, never submitted, go the day after.
            unsubmitted = await PhotoRepo(session).delete_unsubmitted(
                org_id=org.id, before=today - timedelta(days=1)
            )
            if unsubmitted:
                cleared.answers[UNSUBMITTED] += unsubmitted
        if cleared.checkins:
            touched[org.slug] = cleared.checkins
        if (cleared.checkins or cleared.answers) and not dry_run:
            await AuditRepo(session).log(
                org_id=org.id,
                actor=ACTOR,
                action="retention",
                detail=cleared.detail(),
                now=now,
            )
        verb = "would clear" if dry_run else "cleared"
        log.info("retention %s: %s %s", org.slug, verb, cleared.detail())
    await session.flush()
    return touched


async def _clear_org(
    session: AsyncSession, org: Organisation, today: date, *, dry_run: bool
) -> Cleared:
    rules = OrgRetention(org)
    thresholds = rules.thresholds()
    held = select(col(Member.id)).where(
        col(Member.org_id) == org.id, col(Member.hold_reason).is_not(None)
    )
    cleared = Cleared()
    counted: set[int] = set()  # a dry run changes nothing, so a later period finds it again
    for days in thresholds:
        last_id = 0
        while True:
            # Through ix_checkin_retention. A batch cleared leaves the selection (its
            # `retention_applied` reaches `days`), so the next batch is simply the next few; a
            # dry run, which changes nothing, walks on by id instead.
            stmt = select(CheckIn).where(
                col(CheckIn.org_id) == org.id,
                col(CheckIn.retention_applied) < days,
                col(CheckIn.local_day) < today - timedelta(days=days),
                col(CheckIn.member_id).not_in(held),
            )
            if dry_run:
                stmt = stmt.where(col(CheckIn.id) > last_id).order_by(col(CheckIn.id))
            rows = (await session.exec(stmt.limit(BATCH))).all()
            if not rows:
                break
            if dry_run:
                last_id = rows[-1].id or last_id
                rows = [r for r in rows if r.id not in counted]
                counted.update(r.id for r in rows if r.id is not None)
            await _clear_rows(session, rules, thresholds, rows, today, cleared, dry_run)
    return cleared


async def _clear_rows(
    session: AsyncSession,
    rules: OrgRetention,
    thresholds: Sequence[int],
    rows: Sequence[CheckIn],
    today: date,
    cleared: Cleared,
    dry_run: bool,
) -> None:
    """One batch: each check-in loses what its age has put past its periods."""
    revisions = await _revisions_of(session, rows)
    for checkin in rows:
        days_old = retention.age(checkin.local_day, today)
        form_rules = rules.rules(checkin.form)
        periods = rules.periods_of(form_rules, checkin.answers)
        over = retention.expired(periods, days_old)
        answers, removed = retention.expire(form_rules.form, checkin.answers, over)
        coordinates = days_old > form_rules.coordinate_days and any(
            v is not None for v in (checkin.latitude, checkin.longitude, checkin.accuracy_m)
        )
        if removed or coordinates:
            cleared.checkins += 1
            cleared.answers.update(p.name for p in removed)
            if coordinates:
                cleared.answers[COORDINATES] += 1
        if dry_run:
            continue
        checkin.retention_applied = max(t for t in thresholds if t < days_old)
        if removed:
            checkin.answers = answers
            await PhotoRepo(session).delete_answers(
                member_id=checkin.member_id,
                local_day=checkin.local_day,
                questions={p.question for p in removed if p.part is None},
            )
        if coordinates:
            checkin.latitude = checkin.longitude = checkin.accuracy_m = None
        for revision in revisions.get((checkin.member_id, checkin.local_day), []):
            kept, gone = retention.expire(form_rules.form, revision.answers, over)
            if gone:
                revision.answers = kept
    await session.flush()


async def _revisions_of(
    session: AsyncSession, rows: Sequence[CheckIn]
) -> dict[tuple[int, date], list[CheckInRevision]]:
    """Every revision of these check-ins, in one query."""
    if not rows:
        return {}
    wanted = {(r.member_id, r.local_day) for r in rows}
    stmt = select(CheckInRevision).where(
        col(CheckInRevision.member_id).in_({m for m, _ in wanted}),
        col(CheckInRevision.local_day).in_({d for _, d in wanted}),
    )
    found: dict[tuple[int, date], list[CheckInRevision]] = {}
    for revision in (await session.exec(stmt)).all():
        pair = (revision.member_id, revision.local_day)
        if pair in wanted:
            found.setdefault(pair, []).append(revision)
    return found
