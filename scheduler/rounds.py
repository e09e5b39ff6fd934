"""Rounds: at each due slot, decide who gets what and put it in the outbox (the sender sends).

A round claims its slot and enqueues its letters in one transaction, so a crash before the
commit leaves the slot unclaimed (it runs after the restart) and a crash after it leaves the
letters in the outbox (the sender resumes). Two processes cannot both claim a slot.

Each person is written to on every channel of `Rounds.channels` (those the deployment has a
courier for) where they have an identity: one letter per channel and address, in the language
their account chose or their organisation's. The figures are the same whichever channel a
member checked in on: check-ins are the member's, not a channel's."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import Clock, day_end
from domain.i18n import LOCALE_OF, Translator
from domain.present import texts
from domain.schedule import due_slots
from domain.status import DayStatus
from storage.aggregates import member_days, total, unit_figures
from storage.db import SessionFactory
from storage.letters import Reminded, reminder_letters
from storage.models import Organisation, RoleGrant, Unit
from storage.repo import Repo
from storage.repos.accounts import Contact
from storage.schedules import Letter, OrgPlan, OutboxRepo, ScheduleRepo, plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundResult:
    org: str
    scope: str
    day: date
    slot: str
    enqueued: int


@dataclass
class Rounds:
    sessions: SessionFactory
    clock: Clock
    i18n: Translator
    channels: Collection[str]  # where letters are addressed: the channels with a courier

    async def tick(self) -> list[RoundResult]:
        """Run every slot that is due and not yet claimed, for every organisation."""
        now = self.clock.now()
        async with self.sessions() as session:
            orgs = (await session.exec(select(Organisation))).all()
        results = []
        for org in orgs:
            async with self.sessions() as session:
                org_plan = await plan(session, org)
            for scope, spec in org_plan.specs.items():
                for slot in due_slots(spec, org.timezone, now):
                    result = await self.run_slot(org, scope, slot.day, slot.name, late=slot.late)
                    if result is not None:
                        results.append(result)
        return results

    async def run_slot(
        self, org: Organisation, scope: str, day: date, slot: str, *, late: bool = False
    ) -> RoundResult | None:
        """Claim and run one slot; None when it had already been run."""
        assert org.id is not None
        now = self.clock.now()
        async with self.sessions() as session:
            schedules = ScheduleRepo(session)
            if not await schedules.claim_slot(
                org_id=org.id, scope=scope, day=day, slot=slot, now=now
            ):
                return None
            org_plan = await plan(session, org)
            letters = await self.letters(session, org_plan, scope, day, slot)
            enqueued = await OutboxRepo(session).enqueue(letters, now=now)
            await session.commit()
        log.info(
            "%s %s %s %s: %d letters%s",
            org.slug,
            scope,
            day,
            slot,
            enqueued,
            " (late: the process was down at the slot time)" if late else "",
        )
        return RoundResult(org=org.slug, scope=scope, day=day, slot=slot, enqueued=enqueued)

    async def letters(
        self, session: AsyncSession, org_plan: OrgPlan, scope: str, day: date, slot: str
    ) -> list[Letter]:
        if slot == "cutoff":
            return await self.missing_lists(session, org_plan, scope, day)
        if slot == "report":
            return await self.reports(session, org_plan, scope, day)
        return await self.reminders(session, org_plan, org_plan.units_of(scope), day, slot)

    async def reminders(
        self,
        session: AsyncSession,
        org_plan: OrgPlan,
        unit_ids: Sequence[int],
        day: date,
        slot: str,
    ) -> list[Letter]:
        """A reminder for every enrolled, reachable, non-excused member still missing, on each
        channel they are reached on."""
        org = org_plan.org
        assert org.id is not None
        if not unit_ids:
            return []
        off = org_plan.off_units(day)
        due = await member_days(
            session,
            org_id=org.id,
            day=day,
            under=None,  # exactly these units, not their subtrees
            unit_ids=[u for u in unit_ids if u not in off],
            statuses={DayStatus.MISSING},
            reachable_only=True,
        )
        return await reminder_letters(
            session,
            self.i18n,
            org=org,
            members=[Reminded(m.member_id, m.account_id, m.name) for m in due],
            channels=self.channels,
            day=day,
            slot=slot,
        )

    async def grants_for(
        self, session: AsyncSession, org_plan: OrgPlan, scope: str
    ) -> list[tuple[RoleGrant, dict[str, list[Contact]]]]:
        """Managers whose report comes with this schedule, and their contacts by language (one
        query for all of them): the text is made once per language, sent to each contact."""
        org = org_plan.org
        assert org.id is not None
        grants = [
            g
            for g in await ScheduleRepo(session).managers(org_id=org.id)
            if org_plan.scope_of_grant(g) == scope
        ]
        reach = await Repo(session).accounts.reach(
            channels=self.channels, account_ids={g.account_id for g in grants}
        )
        found = []
        for grant in grants:
            by_language: dict[str, list[Contact]] = {}
            for contact in reach.get(grant.account_id, ()):
                by_language.setdefault(contact.language or org.language, []).append(contact)
            if by_language:
                found.append((grant, by_language))
        return found

    async def missing_lists(
        self, session: AsyncSession, org_plan: OrgPlan, scope: str, day: date
    ) -> list[Letter]:
        org = org_plan.org
        assert org.id is not None
        off = org_plan.off_units(day)
        letters = []
        with self.i18n.context():
            for grant, by_language in await self.grants_for(session, org_plan, scope):
                scope_units = await self.scope_units(session, org_plan, grant)
                listed = await member_days(
                    session,
                    org_id=org.id,
                    day=day,
                    under=[u.id or 0 for u in scope_units],
                    statuses={DayStatus.MISSING, DayStatus.NOT_ENROLLED},
                    off_units=off,
                )
                for language, contacts in by_language.items():
                    with self.i18n.use_locale(LOCALE_OF[language]):
                        parts = texts.missing_text(
                            scope_name=self.scope_name(org, grant, scope_units),
                            day=day,
                            missing=[m for m in listed if m.status == DayStatus.MISSING],
                            not_enrolled=[m for m in listed if m.status == DayStatus.NOT_ENROLLED],
                        )
                    for contact in contacts:
                        letters += self.parts_to(org.id, grant, contact, "missing", day, parts)
        return letters

    async def reports(
        self, session: AsyncSession, org_plan: OrgPlan, scope: str, day: date
    ) -> list[Letter]:
        org = org_plan.org
        assert org.id is not None
        letters = []
        with self.i18n.context():
            for grant, by_language in await self.grants_for(session, org_plan, scope):
                for language, contacts in by_language.items():
                    with self.i18n.use_locale(LOCALE_OF[language]):
                        parts = await self.report(session, org_plan, grant.unit_id, day, language)
                    for contact in contacts:
                        letters += self.parts_to(org.id, grant, contact, "report", day, parts)
        return letters

    async def report(
        self,
        session: AsyncSession,
        org_plan: OrgPlan,
        unit_id: int | None,
        day: date,
        language: str,
    ) -> list[str]:
        """The daily report of a unit's subtree (the whole organisation for None)."""
        org = org_plan.org
        assert org.id is not None
        repo = Repo(session)
        off = org_plan.off_units(day)
        if unit_id is None:
            children = list(await repo.units.roots(org_id=org.id))
            figures = await unit_figures(
                session,
                units=children,
                day=day,
                off_units=off,
                enrolled_by=day_end(day, org.timezone),
            )
            whole = total(org.name, figures)
            scope_name = texts.whole_organisation()
            under = [u.id or 0 for u in children]
            counted = any(spec.counts(day, org_plan.holidays) for spec in org_plan.specs.values())
        else:
            unit = await repo.units.get(unit_id=unit_id)
            children = list(await repo.units.children(unit_id=unit_id))
            [whole] = await unit_figures(
                session,
                units=[unit],
                day=day,
                off_units=off,
                enrolled_by=day_end(day, org.timezone),
            )
            figures = await unit_figures(
                session,
                units=children,
                day=day,
                off_units=off,
                enrolled_by=day_end(day, org.timezone),
            )
            scope_name = unit.name_path
            under = [unit_id]
            counted = unit_id not in off
        abnormal = await member_days(
            session, org_id=org.id, day=day, under=under, abnormal_only=True
        )
        return texts.report_text(
            org_name=org.name,
            scope_name=scope_name,
            day=day,
            counted=counted,
            whole=whole,
            children=figures,
            abnormal=abnormal,
            form_name=org.form,
            lang=language,
        )

    async def scope_units(
        self, session: AsyncSession, org_plan: OrgPlan, grant: RoleGrant
    ) -> Sequence[Unit]:
        repo = Repo(session)
        if grant.unit_id is None:
            return await repo.units.roots(org_id=org_plan.org.id or 0)
        return [await repo.units.get(unit_id=grant.unit_id)]

    def scope_name(self, org: Organisation, grant: RoleGrant, units: Sequence[Unit]) -> str:
        if grant.unit_id is None:
            return org.name
        return units[0].name_path

    def parts_to(
        self,
        org_id: int,
        grant: RoleGrant,
        contact: Contact,
        kind: str,
        day: date,
        parts: Sequence[str],
    ) -> list[Letter]:
        scope = "org" if grant.unit_id is None else f"u{grant.unit_id}"
        return [
            Letter(
                org_id=org_id,
                channel=contact.channel,
                address=contact.external_id,
                kind=kind,
                day=day,
                slot=f"{scope}#{i}",
                text=part,
            )
            for i, part in enumerate(parts, start=1)
        ]
