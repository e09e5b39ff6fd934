"""Schedules, holidays, excuses, slot claims and the outbox: what the scheduler reads, writes."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.keys import Options
from domain.schedule import DEFAULT, ScheduleSpec, effective_schedules, format_days, format_times
from storage.models import (
    Excuse,
    Holiday,
    Member,
    Organisation,
    Outbox,
    RoleGrant,
    Schedule,
    SlotRun,
    Unit,
    UnitHoliday,
    UnitLink,
)
from storage.repos.common import dialect_insert
from storage.repos.units import UnitRepo

ORG_SCOPE = "org"


def unit_scope(unit_id: int) -> str:
    return f"unit:{unit_id}"


def spec_of(row: Schedule) -> ScheduleSpec:
    return ScheduleSpec.parse(
        remind=row.remind, cutoff=row.cutoff, report=row.report, days=row.days
    )


class ScheduleRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self, *, org_id: int) -> Sequence[Schedule]:
        stmt = select(Schedule).where(Schedule.org_id == org_id).order_by(col(Schedule.id))
        return (await self.session.exec(stmt)).all()

    async def specs(self, *, org_id: int) -> tuple[ScheduleSpec, dict[int, ScheduleSpec]]:
        """The organisation's schedule (the default when none is set) and unit overrides."""
        org_spec, overrides = DEFAULT, {}
        for row in await self.all(org_id=org_id):
            if row.unit_id is None:
                org_spec = spec_of(row)
            else:
                overrides[row.unit_id] = spec_of(row)
        return org_spec, overrides

    async def put(self, *, org_id: int, unit_id: int | None, spec: ScheduleSpec) -> Schedule:
        scope = ORG_SCOPE if unit_id is None else unit_scope(unit_id)
        stmt = select(Schedule).where(Schedule.org_id == org_id, Schedule.scope == scope)
        row = (await self.session.exec(stmt)).first()
        if row is None:
            row = Schedule(org_id=org_id, scope=scope, unit_id=unit_id)
            self.session.add(row)
        row.remind = format_times(spec.remind)
        row.cutoff = f"{spec.cutoff:%H:%M}"
        row.report = f"{spec.report:%H:%M}"
        row.days = format_days(spec.days)
        await self.session.flush()
        return row

    async def holidays(self, *, org_id: int) -> frozenset[date]:
        stmt = select(Holiday).where(Holiday.org_id == org_id)
        return frozenset(h.day for h in (await self.session.exec(stmt)).all())

    async def unit_holidays(self, *, org_id: int) -> dict[int, frozenset[date]]:
        """Holidays of single units (each applies to the unit's whole subtree)."""
        stmt = (
            select(UnitHoliday)
            .join(Unit, col(Unit.id) == col(UnitHoliday.unit_id))
            .where(Unit.org_id == org_id)
        )
        found: dict[int, set[date]] = {}
        for row in (await self.session.exec(stmt)).all():
            found.setdefault(row.unit_id, set()).add(row.day)
        return {unit_id: frozenset(days) for unit_id, days in found.items()}

    async def add_holidays(
        self, *, org_id: int, days: Sequence[date], unit_id: int | None = None
    ) -> int:
        if not days:
            return 0
        insert = dialect_insert(self.session)
        if unit_id is not None:
            stmt = insert(UnitHoliday).values([{"unit_id": unit_id, "day": d} for d in days])
            result = await self.session.exec(stmt.on_conflict_do_nothing())
            return int(result.rowcount or 0)
        stmt = insert(Holiday).values([{"org_id": org_id, "day": d} for d in days])
        result = await self.session.exec(stmt.on_conflict_do_nothing())
        return int(result.rowcount or 0)

    async def remove_holidays(
        self, *, org_id: int, days: Sequence[date], unit_id: int | None = None
    ) -> int:
        """Take days back (of the whole organisation, or of one unit); returns how many were."""
        if not days:
            return 0
        if unit_id is not None:
            stmt = delete(UnitHoliday).where(
                col(UnitHoliday.unit_id) == unit_id, col(UnitHoliday.day).in_(days)
            )
        else:
            stmt = delete(Holiday).where(col(Holiday.org_id) == org_id, col(Holiday.day).in_(days))
        result = await self.session.exec(stmt)
        return int(result.rowcount or 0)

    async def excuse(
        self,
        *,
        org_id: int,
        member_id: int,
        first_day: date,
        last_day: date,
        reason: str,
        by: str,
        now: datetime,
    ) -> Excuse:
        excuse = Excuse(
            org_id=org_id,
            member_id=member_id,
            first_day=first_day,
            last_day=last_day,
            reason=reason,
            created_by=by,
            created_at=now,
        )
        self.session.add(excuse)
        await self.session.flush()
        return excuse

    async def excuses(
        self, *, org_id: int, member_id: int | None = None
    ) -> Sequence[tuple[Excuse, Member]]:
        """An organisation's excuses (or one member's) with their members, earliest first."""
        stmt = (
            select(Excuse, Member)
            .join(Member, col(Member.id) == col(Excuse.member_id))
            .where(Excuse.org_id == org_id)
            .order_by(col(Excuse.first_day), col(Excuse.id))
        )
        if member_id is not None:
            stmt = stmt.where(Excuse.member_id == member_id)
        return (await self.session.exec(stmt)).all()

    async def cancel_excuse(self, *, org_id: int, excuse_id: int) -> tuple[Excuse, Member] | None:
        """Delete one excuse of the organisation (returned with its member); None when it has
        no such excuse."""
        excuse = await self.session.get(Excuse, excuse_id)
        if excuse is None or excuse.org_id != org_id:
            return None
        member = await self.session.get(Member, excuse.member_id)
        assert member is not None  # a foreign key
        await self.session.delete(excuse)
        await self.session.flush()
        return excuse, member

    async def claim_slot(
        self, *, org_id: int, scope: str, day: date, slot: str, now: datetime
    ) -> bool:
        """Claim a round; False when another run (or another process) already has it."""
        insert = dialect_insert(self.session)
        stmt = insert(SlotRun).values(
            org_id=org_id, scope=scope, day=day, slot=slot, started_at=now, due=0
        )
        result = await self.session.exec(stmt.on_conflict_do_nothing())
        return bool(result.rowcount)

    async def managers(self, *, org_id: int) -> Sequence[RoleGrant]:
        stmt = (
            select(RoleGrant)
            .where(RoleGrant.org_id == org_id, col(RoleGrant.revoked_at).is_(None))
            .order_by(col(RoleGrant.id))
        )
        return (await self.session.exec(stmt)).all()

    async def managers_of_unit(self, *, org_id: int, unit_id: int) -> Sequence[RoleGrant]:
        """Grants whose scope contains `unit_id`: an ancestor unit, or the whole organisation."""
        ancestors = select(UnitLink.ancestor_id).where(UnitLink.descendant_id == unit_id)
        stmt = (
            select(RoleGrant)
            .where(RoleGrant.org_id == org_id, col(RoleGrant.revoked_at).is_(None))
            .where(or_(col(RoleGrant.unit_id).is_(None), col(RoleGrant.unit_id).in_(ancestors)))
            .order_by(col(RoleGrant.id))
        )
        return (await self.session.exec(stmt)).all()


@dataclass(frozen=True)
class Letter:
    """A message to enqueue: light-markup text and options (`domain.keys`), for an address on
    a channel (a Telegram chat id as a string on "telegram")."""

    org_id: int
    channel: str
    address: str
    kind: str
    day: date
    slot: str
    text: str
    member_id: int | None = None
    options: Options | None = None


@dataclass(frozen=True)
class RoundStats:
    due: int
    sent: int
    skipped: int
    failed: int
    blocked: int
    pending: int


class OutboxRepo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enqueue(self, letters: Sequence[Letter], *, now: datetime) -> int:
        """Add letters; one already there for the same (channel, address, day, kind, slot) is
        kept as is."""
        added = 0
        insert = dialect_insert(self.session)
        for start in range(0, len(letters), 500):
            chunk = letters[start : start + 500]
            stmt = insert(Outbox).values(
                [
                    {
                        "org_id": x.org_id,
                        "channel": x.channel,
                        "address": x.address,
                        "member_id": x.member_id,
                        "kind": x.kind,
                        "day": x.day,
                        "slot": x.slot,
                        "text": x.text,
                        "options": x.options,
                        "status": "pending",
                        "attempts": 0,
                        "not_before": now,
                        "created_at": now,
                    }
                    for x in chunk
                ]
            )
            result = await self.session.exec(stmt.on_conflict_do_nothing())
            added += int(result.rowcount or 0)
        return added

    async def claim(
        self,
        *,
        now: datetime,
        limit: int,
        lease: timedelta,
        channels: Sequence[str] | None = None,
    ) -> Sequence[Outbox]:
        """Take up to `limit` due letters for this sender (of `channels` only, when given: the
        ones it can deliver); letters another sender took more than `lease` ago (it died) are
        taken over."""
        token = secrets.token_hex(8)
        due = (
            select(Outbox.id)
            .where(
                or_(
                    (col(Outbox.status) == "pending") & (col(Outbox.not_before) <= now),
                    (col(Outbox.status) == "sending") & (col(Outbox.claimed_at) < now - lease),
                )
            )
            .order_by(col(Outbox.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if channels is not None:
            due = due.where(col(Outbox.channel).in_(channels))
        stmt = (
            update(Outbox)
            .where(col(Outbox.id).in_(due.scalar_subquery()))
            .values(status="sending", claimed_at=now, claimed_by=token)
        )
        await self.session.exec(stmt)
        claimed = select(Outbox).where(Outbox.claimed_by == token).order_by(col(Outbox.id))
        return (await self.session.exec(claimed)).all()

    async def prune(self, *, before: datetime) -> int:
        """Forget settled letters written before `before`: their texts name people (an alert
        names what was abnormal), and the outbox must not grow without end."""
        stmt = delete(Outbox).where(
            col(Outbox.status).not_in(["pending", "sending"]), col(Outbox.created_at) < before
        )
        result = await self.session.exec(stmt)
        return int(result.rowcount or 0)

    async def settle(self, outcomes: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Write each letter's outcome (status, attempts, error, times) in one go: one
        executemany per set of columns written, not one statement per letter."""
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for letter_id, values in outcomes:
            shapes.setdefault(tuple(sorted(values)), []).append({"letter_id": letter_id, **values})
        connection = await self.session.connection()
        stmt = update(Outbox).where(col(Outbox.id) == bindparam("letter_id"))
        for params in shapes.values():
            await connection.execute(stmt, params)  # SET takes the columns named in params

    async def pending_count(self) -> int:
        stmt = (
            select(func.count())
            .select_from(Outbox)
            .where(col(Outbox.status).in_(["pending", "sending"]))
        )
        return int((await self.session.exec(stmt)).one())

    async def stats(self, *, org_id: int, day: date, kind: str, slot: str) -> RoundStats:
        stmt = (
            select(Outbox.status, func.count())
            .where(
                Outbox.org_id == org_id,
                Outbox.day == day,
                Outbox.kind == kind,
                Outbox.slot == slot,
            )
            .group_by(col(Outbox.status))
        )
        counts = dict((await self.session.exec(stmt)).all())
        return RoundStats(
            due=sum(counts.values()),
            sent=counts.get("sent", 0),
            skipped=counts.get("skipped", 0),
            failed=counts.get("failed", 0),
            blocked=counts.get("blocked", 0),
            pending=counts.get("pending", 0) + counts.get("sending", 0),
        )


@dataclass
class OrgPlan:
    """An organisation's schedules resolved onto its units for one tick."""

    org: Organisation
    units: Sequence[Unit]
    scope_of_unit: dict[int, str]
    specs: dict[str, ScheduleSpec]
    holidays: frozenset[date]
    unit_holidays: dict[int, frozenset[date]] = field(default_factory=dict)

    def units_of(self, scope: str) -> list[int]:
        return [uid for uid, key in self.scope_of_unit.items() if key == scope]

    def off_units(self, day: date) -> set[int]:
        """Units whose members are not expected on `day` (weekday off, or a holiday)."""
        on_holiday = {uid for uid, days in self.unit_holidays.items() if day in days}
        off = {
            uid
            for uid, key in self.scope_of_unit.items()
            if not self.specs[key].counts(day, self.holidays)
        }
        if on_holiday:
            off |= {
                u.id
                for u in self.units
                if u.id is not None and on_holiday & {int(p) for p in u.path.strip("/").split("/")}
            }
        return off

    def scope_of_grant(self, grant: RoleGrant) -> str:
        return ORG_SCOPE if grant.unit_id is None else self.scope_of_unit[grant.unit_id]


async def plan(session: AsyncSession, org: Organisation) -> OrgPlan:
    assert org.id is not None
    units = await UnitRepo(session).all(org_id=org.id)
    org_spec, overrides = await ScheduleRepo(session).specs(org_id=org.id)
    scope_of_unit = effective_schedules(
        [(u.id or 0, u.parent_id) for u in units],
        ORG_SCOPE,
        {uid: unit_scope(uid) for uid in overrides},
    )
    specs = {ORG_SCOPE: org_spec, **{unit_scope(uid): s for uid, s in overrides.items()}}
    schedules = ScheduleRepo(session)
    holidays = await schedules.holidays(org_id=org.id)
    unit_holidays = await schedules.unit_holidays(org_id=org.id)
    return OrgPlan(org, units, scope_of_unit, specs, holidays, unit_holidays)
