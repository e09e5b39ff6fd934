"""Everything Daka stores about one person, in one file: their right of access (PIPL art. 45),
asked for with /mydata in the chat or by an administrator answering a written request (`daka
mydata`).

`REGISTRY` is the one list of the kinds of record a person owns, each with the tables it reads
and its loader; the file holds every kind, in this order. A table with a `member_id` or
`account_id` column holds somebody's records, so it must be named here:
tests/storage/test_owned.py fails for a table that is not, so a new table cannot be forgotten.
The update journal and the conversation state hold what people send only for as long as they
are handled (days), and are keyed by the channel's ids rather than by these columns.

One module past 400 lines on purpose: the registry and its loaders are read together, so that a
kind of record is added, and checked against the tables, in one place."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import SQLModel, col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import (
    Account,
    AuditEntry,
    CheckIn,
    CheckInRevision,
    Consent,
    EnrolAttempt,
    Excuse,
    Identity,
    Member,
    Organisation,
    Outbox,
    Photo,
    RoleGrant,
    Unit,
    UnitLink,
)
from storage.repos.photos import PhotoRepo
from storage.repos.privacy import erasure_due
from storage.schedules import ScheduleRepo

FORMAT = "daka-personal-data/1"

# Audit actions whose subject is not a member id (a unit, a scope, a Telegram id, a file name).
NOT_ABOUT_A_MEMBER = ("role.", "export", "trend", "schedule.", "roster.", "retention")
# Audit actions that read a whole scope: they concern every member inside it.
SCOPE_READS = ("export", "trend")


@dataclass(frozen=True)
class Owner:
    """Whose records: an account (None for a roster entry never enrolled) and roster entries;
    `org_ids` limits them to these organisations (an administrator's request), None to none."""

    account_id: int | None
    members: tuple[Member, ...]
    org_ids: frozenset[int] | None = None

    def in_orgs(self, column: Any) -> list[Any]:
        return [] if self.org_ids is None else [col(column).in_(self.org_ids)]

    @property
    def member_ids(self) -> list[int]:
        return [m.id for m in self.members if m.id is not None]


Loader = Callable[[AsyncSession, Owner], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class RecordKind:
    """One kind of record a person owns: its name in the file, the tables it reads, how."""

    name: str
    tables: tuple[type[SQLModel], ...]
    load: Loader


async def owner_of_account(session: AsyncSession, account_id: int | None) -> Owner:
    """A person as they ask in the chat: their account and every roster entry bound to it."""
    if account_id is None:
        return Owner(None, ())
    stmt = select(Member).where(col(Member.account_id) == account_id).order_by(col(Member.id))
    return Owner(account_id, tuple((await session.exec(stmt)).all()))


def owner_of_member(member: Member) -> Owner:
    """A roster entry as an administrator asks for it: that entry and its account, within the
    entry's organisation."""
    return Owner(member.account_id, (member,), frozenset({member.org_id}))


async def _names(session: AsyncSession, ids: Collection[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    stmt = select(Organisation).where(col(Organisation.id).in_(wanted))
    return {o.id or 0: o.name for o in (await session.exec(stmt)).all()}


async def _unit_paths(session: AsyncSession, ids: Collection[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    stmt = select(Unit).where(col(Unit.id).in_(wanted))
    return {u.id or 0: u.name_path for u in (await session.exec(stmt)).all()}


async def _account(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    account = await session.get(Account, owner.account_id) if owner.account_id else None
    if account is None:
        return []
    return [
        {
            "first_seen": account.first_seen,
            "language": account.language,
            "failed_enrolment_attempts": account.failed_attempts,
            "locked_until": account.locked_until,
        }
    ]


async def _identities(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    if owner.account_id is None:
        return []
    stmt = (
        select(Identity)
        .where(col(Identity.account_id) == owner.account_id)
        .order_by(col(Identity.id))
    )
    return [
        {"channel": i.channel, "id": i.external_id, "since": i.created_at}
        for i in (await session.exec(stmt)).all()
    ]


async def _enrolments(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    orgs = {
        o.id: o
        for o in (
            await session.exec(
                select(Organisation).where(
                    col(Organisation.id).in_({m.org_id for m in owner.members})
                )
            )
        ).all()
    }
    units = await _unit_paths(session, {m.unit_id for m in owner.members})
    return [
        {
            "organisation": orgs[m.org_id].name,
            "unit": units.get(m.unit_id),
            "member_id": m.external_id,
            "name": m.name,
            "on_roster": m.active,
            "enrolled_at": m.enrolled_at,
            "unreachable_since": m.unreachable_since,
            "withdrew_consent_at": m.withdrawn_at,
            "answers_erased_at": m.erased_at,
            "answers_erased_after": None
            if m.erased_at is not None
            else erasure_due(m, orgs[m.org_id]),
            "legal_hold": None
            if m.hold_reason is None
            else {"reason": m.hold_reason, "since": m.held_at},
        }
        for m in owner.members
    ]


async def _consents(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    if owner.account_id is None:
        return []
    stmt = (
        select(Consent)
        .where(col(Consent.account_id) == owner.account_id, *owner.in_orgs(Consent.org_id))
        .order_by(col(Consent.id))
    )
    rows = (await session.exec(stmt)).all()
    names = await _names(session, {c.org_id for c in rows})
    return [
        {
            "organisation": names.get(c.org_id),
            "notice_version": c.version,
            "accepted": c.accepted,
            "at": c.at,
        }
        for c in rows
    ]


async def _attempts(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    if owner.account_id is None:
        return []
    stmt = (
        select(EnrolAttempt)
        .where(
            col(EnrolAttempt.account_id) == owner.account_id,
            *owner.in_orgs(EnrolAttempt.org_id),
        )
        .order_by(col(EnrolAttempt.id))
    )
    rows = (await session.exec(stmt)).all()
    names = await _names(session, {a.org_id for a in rows})
    return [
        {
            "organisation": names.get(a.org_id),
            "member_id_given": a.external_id,
            "outcome": a.outcome,
            "at": a.at,
        }
        for a in rows
    ]


async def _roles(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    if owner.account_id is None:
        return []
    stmt = (
        select(RoleGrant)
        .where(col(RoleGrant.account_id) == owner.account_id, *owner.in_orgs(RoleGrant.org_id))
        .order_by(col(RoleGrant.id))
    )
    rows = (await session.exec(stmt)).all()
    names = await _names(session, {g.org_id for g in rows})
    units = await _unit_paths(session, {g.unit_id for g in rows})
    return [
        {
            "organisation": names.get(g.org_id),
            "role": g.role,
            "unit": units.get(g.unit_id) if g.unit_id is not None else None,
            "granted_at": g.granted_at,
            "revoked_at": g.revoked_at,
        }
        for g in rows
    ]


def _by_member(owner: Owner) -> dict[int, Member]:
    return {m.id: m for m in owner.members if m.id is not None}


async def _check_ins(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    """Every check-in with every version submitted (what the retention left of each)."""
    if not owner.members:
        return []
    members = _by_member(owner)
    names = await _names(session, {m.org_id for m in owner.members})
    stmt = (
        select(CheckIn)
        .where(col(CheckIn.member_id).in_(owner.member_ids))
        .order_by(col(CheckIn.member_id), col(CheckIn.local_day))
    )
    checkins = (await session.exec(stmt)).all()
    revisions: dict[tuple[int, date], list[dict[str, Any]]] = {}
    stmt_r = (
        select(CheckInRevision)
        .where(col(CheckInRevision.member_id).in_(owner.member_ids))
        .order_by(col(CheckInRevision.id))
    )
    for r in (await session.exec(stmt_r)).all():
        revisions.setdefault((r.member_id, r.local_day), []).append(
            {
                "version": r.version,
                "submitted_at": r.submitted_at,
                "abnormal": r.abnormal,
                "answers": r.answers,
            }
        )
    return [
        {
            "organisation": names.get(members[c.member_id].org_id),
            "member_id": members[c.member_id].external_id,
            "day": c.local_day,
            "version": c.version,
            "submitted_at": c.submitted_at,
            "latitude": c.latitude,
            "longitude": c.longitude,
            "accuracy_m": c.accuracy_m,
            "live_location": c.live,
            "place": [c.country, c.province, c.city],
            "outside_geofence": c.outside_geofence,
            "abnormal": c.abnormal,
            "reasons": c.reasons,
            "answers": c.answers,
            "form": c.form,
            "form_version": c.form_version,
            "revisions": revisions.get((c.member_id, c.local_day), []),
        }
        for c in checkins
    ]


async def _photos(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    """The photos kept of their photo answers: what each is, not its bytes (shown in the chat
    with the check-in, and on request)."""
    if not owner.members:
        return []
    members = _by_member(owner)
    return [
        {
            "member_id": members[p.member_id].external_id,
            "day": p.local_day,
            "question": p.question,
            "content_type": p.content_type,
            "bytes": p.size,
            "channel": p.channel,
            "received_at": p.created_at,
        }
        for p in await PhotoRepo(session).infos(member_ids=owner.member_ids)
    ]


async def _excuses(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    if not owner.members:
        return []
    members = _by_member(owner)
    stmt = (
        select(Excuse).where(col(Excuse.member_id).in_(owner.member_ids)).order_by(col(Excuse.id))
    )
    return [
        {
            "member_id": members[e.member_id].external_id,
            "first_day": e.first_day,
            "last_day": e.last_day,
            "reason": e.reason,
            "excused_by": e.created_by,
            "at": e.created_at,
        }
        for e in (await session.exec(stmt)).all()
    ]


async def _letters(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    """The reminders written to them (kept two weeks once settled)."""
    if not owner.members:
        return []
    members = _by_member(owner)
    stmt = (
        select(Outbox).where(col(Outbox.member_id).in_(owner.member_ids)).order_by(col(Outbox.id))
    )
    return [
        {
            "member_id": members[x.member_id].external_id if x.member_id else None,
            "kind": x.kind,
            "day": x.day,
            "channel": x.channel,
            "text": x.text,
            "status": x.status,
            "written_at": x.created_at,
            "sent_at": x.sent_at,
        }
        for x in (await session.exec(stmt)).all()
    ]


async def _access_log(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    """The audit trail about them: who looked them up, excused, nudged or erased them, each
    export and chart of a scope holding their unit, and what they did themselves."""
    identities: list[str] = []
    if owner.account_id is not None:
        stmt_i = select(col(Identity.channel), col(Identity.external_id)).where(
            col(Identity.account_id) == owner.account_id
        )
        for channel, external_id in (await session.exec(stmt_i)).all():
            # Actors are "channel:id" (migration 0012); a bare id is an older entry.
            identities += [f"{channel}:{external_id}", external_id]
    orgs = {m.org_id for m in owner.members}
    conditions: list[ColumnElement[bool]] = []
    for member in owner.members:
        conditions.append(
            (col(AuditEntry.org_id) == member.org_id)
            & (col(AuditEntry.subject) == member.external_id)
        )
    if orgs:
        conditions.append(
            col(AuditEntry.org_id).in_(orgs) & col(AuditEntry.action).in_(SCOPE_READS)
        )
    if identities:
        conditions.append(col(AuditEntry.actor).in_(identities))
    if not conditions:
        return []
    stmt = (
        select(AuditEntry)
        .where(or_(*conditions), *owner.in_orgs(AuditEntry.org_id))
        .order_by(col(AuditEntry.id))
    )
    entries = (await session.exec(stmt)).all()
    covers = await _scope_labels(session, owner.members)
    names = await _names(session, {e.org_id for e in entries})
    kept = []
    for e in entries:
        mine = e.actor in identities
        about = any(
            e.org_id == m.org_id and e.subject == m.external_id for m in owner.members
        ) and not e.action.startswith(NOT_ABOUT_A_MEMBER)
        scope = e.action in SCOPE_READS and _covered(e, covers)
        if mine or about or scope:
            kept.append(
                {
                    "organisation": names.get(e.org_id or 0),
                    "who": e.actor,
                    "action": e.action,
                    "subject": e.subject,
                    "detail": e.detail,
                    "at": e.at,
                }
            )
    return kept


async def _scope_labels(
    session: AsyncSession, members: Sequence[Member]
) -> dict[int, tuple[set[str], set[str]]]:
    """Per organisation, how an export's audit entry names a scope holding one of `members`:
    unit ids (the chat's /export: "0" is the whole organisation) and names (`daka export`: a
    unit's path, or the slug)."""
    found: dict[int, tuple[set[str], set[str]]] = {}
    for member in members:
        ids, paths = found.setdefault(member.org_id, ({"0"}, set()))
        org = await session.get(Organisation, member.org_id)
        if org is not None:
            paths.add(org.slug)
        stmt = (
            select(Unit)
            .join(UnitLink, col(UnitLink.ancestor_id) == col(Unit.id))
            .where(col(UnitLink.descendant_id) == member.unit_id)
        )
        for unit in (await session.exec(stmt)).all():
            ids.add(str(unit.id))
            paths.add(unit.name_path)
    return found


def _covered(entry: AuditEntry, covers: dict[int, tuple[set[str], set[str]]]) -> bool:
    ids, paths = covers.get(entry.org_id or 0, (set(), set()))
    subject = entry.subject or ""
    if subject in paths:
        return True
    parts = subject.split(",")
    return all(p.isdigit() for p in parts) and any(p in ids for p in parts)


REGISTRY: tuple[RecordKind, ...] = (
    RecordKind("account", (Account,), _account),
    RecordKind("identities", (Identity,), _identities),
    RecordKind("enrolments", (Member,), _enrolments),
    RecordKind("consents", (Consent,), _consents),
    RecordKind("enrolment_attempts", (EnrolAttempt,), _attempts),
    RecordKind("roles", (RoleGrant,), _roles),
    RecordKind("check_ins", (CheckIn, CheckInRevision), _check_ins),
    RecordKind("photos", (Photo,), _photos),
    RecordKind("excuses", (Excuse,), _excuses),
    RecordKind("messages", (Outbox,), _letters),
    RecordKind("access_log", (AuditEntry,), _access_log),
)


async def readers(session: AsyncSession, owner: Owner) -> list[dict[str, Any]]:
    """Which roles can read a member's records, and which kinds (by scope, never by name)."""
    found: list[dict[str, Any]] = []
    for member in owner.members:
        org = await session.get(Organisation, member.org_id)
        grants = await ScheduleRepo(session).managers_of_unit(
            org_id=member.org_id, unit_id=member.unit_id
        )
        units = await _unit_paths(session, {g.unit_id for g in grants})
        for grant in grants:
            entry = {
                "organisation": org.name if org else None,
                "role": "administrator" if grant.unit_id is None else "manager",
                "scope": None if grant.unit_id is None else units.get(grant.unit_id),
                "can_read": ["enrolments", "check_ins", "photos", "excuses"],
            }
            if entry not in found:
                found.append(entry)
    return found


async def personal_data(session: AsyncSession, owner: Owner, *, now: datetime) -> dict[str, Any]:
    """Every kind of record of the registry, and who can read them."""
    data: dict[str, Any] = {"format": FORMAT, "made_at": now}
    for kind in REGISTRY:
        data[kind.name] = await kind.load(session, owner)
    data["who_can_read"] = await readers(session, owner)
    return data


def as_json(data: dict[str, Any]) -> bytes:
    """The file: UTF-8 JSON, dates and times in ISO 8601."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=_iso).encode("utf-8")


def _iso(value: object) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
