"""SQLModel tables; Alembic owns the schema, these classes describe it to the code."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


def _utc() -> Any:
    return Column(UTCDateTime(), nullable=False)


def _utc_opt() -> Any:
    return Column(UTCDateTime(), nullable=True)


class Organisation(SQLModel, table=True):
    """A school or a town: one time zone, one form, one unit tree."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    language: str = Field(default="zh", max_length=8)
    form: str = Field(default="health", max_length=64)
    geofence_lat: float | None = None
    geofence_lon: float | None = None
    geofence_radius_m: float | None = None
    # Days an answer is kept when its question declares none (`domain.retention`).
    retain_days: int = 30
    # Days between a member's withdrawal of consent and the erasure of their answers.
    withdrawal_grace_days: int = 7
    created_at: datetime = Field(sa_column=_utc())


class Unit(SQLModel, table=True):
    """A node of the organisation's tree; `path` is the materialised chain of ids for roll-ups."""

    __table_args__ = (
        UniqueConstraint("org_id", "name_path", name="uq_unit_org_name_path"),
        Index("ix_unit_org_path", "org_id", "path"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id")
    name: str = Field(max_length=200)
    name_path: str = Field(max_length=1000)
    path: str = Field(default="/", max_length=1000)
    depth: int = 0


class UnitLink(SQLModel, table=True):
    """Closure table of the unit tree: each (ancestor, descendant) pair, a unit with itself at
    depth 0, so roll-ups over any depth are one join."""

    __table_args__ = (Index("ix_unitlink_descendant", "descendant_id", "depth"),)

    ancestor_id: int = Field(foreign_key="unit.id", primary_key=True)
    descendant_id: int = Field(foreign_key="unit.id", primary_key=True)
    depth: int


class Member(SQLModel, table=True):
    """A roster entry; `account_id` is set once the person has enrolled."""

    __table_args__ = (
        UniqueConstraint("org_id", "external_id", name="uq_member_org_external"),
        UniqueConstraint("org_id", "account_id", name="uq_member_org_account"),
        Index("ix_member_unit", "unit_id"),
        Index("ix_member_account", "account_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    unit_id: int = Field(foreign_key="unit.id")
    external_id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    account_id: int | None = Field(default=None, foreign_key="account.id")
    enrolled_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    active: bool = True
    unreachable_since: datetime | None = Field(default=None, sa_column=_utc_opt())
    # Consent withdrawn (PIPL art. 15): when, and the organisation's local day it counts from.
    withdrawn_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    withdrawn_day: date | None = None
    # When the member's answers were erased (after a withdrawal, or on request).
    erased_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    # A legal hold: while set, nothing of the member's is erased or expires.
    hold_reason: str | None = Field(default=None, max_length=200)
    held_at: datetime | None = Field(default=None, sa_column=_utc_opt())


class Account(SQLModel, table=True):
    """A person as Daka knows them, whichever channel they write from: language choice and
    enrolment lockout. How to recognise them on each channel is in `Identity`."""

    id: int | None = Field(default=None, primary_key=True)
    language: str | None = Field(default=None, max_length=8)
    failed_attempts: int = 0
    locked_until: datetime | None = Field(default=None, sa_column=_utc_opt())
    first_seen: datetime = Field(sa_column=_utc())
    # The command menu last given to this chat ("manager:zh_Hans"); None: the default one.
    menu: str | None = Field(default=None, max_length=32)
    # The organisation chosen to work in, by someone who manages several (see storage.scope).
    org_id: int | None = None
    # How many times the person's data was erased: a turn that read them before an erasure
    # committed writes nothing of theirs after it (storage.repos.accounts.ErasedMeanwhile).
    erasures: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})


class Identity(SQLModel, table=True):
    """A person's id on one channel (a Telegram user id as decimal text), bound to their
    account: the roster, consents and roles know the account, never a channel's id."""

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),
        Index("ix_identity_account", "account_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    account_id: int = Field(foreign_key="account.id")
    created_at: datetime = Field(sa_column=_utc())


class Consent(SQLModel, table=True):
    """What a person agreed to (or declined), with the notice version, for PIPL."""

    __table_args__ = (Index("ix_consent_who", "account_id", "org_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    org_id: int = Field(foreign_key="organisation.id")
    version: int
    accepted: bool
    at: datetime = Field(sa_column=_utc())


class Invite(SQLModel, table=True):
    """An invite link's code: which organisation, unit and role it enrols into."""

    code: str = Field(primary_key=True, max_length=64)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    role: str = Field(default="member", max_length=16)
    expires_at: datetime = Field(sa_column=_utc())
    max_uses: int | None = None
    uses: int = 0
    revoked_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    created_at: datetime = Field(sa_column=_utc())


class RoleGrant(SQLModel, table=True):
    """A manager's or admin's scope: a unit and everything under it (admin: the root)."""

    __table_args__ = (Index("ix_role_account", "account_id", "org_id"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    account_id: int = Field(foreign_key="account.id")
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    role: str = Field(max_length=16)
    granted_at: datetime = Field(sa_column=_utc())
    revoked_at: datetime | None = Field(default=None, sa_column=_utc_opt())


class CheckIn(SQLModel, table=True):
    """The current answer of one member for one local day; earlier versions are revisions."""

    __table_args__ = (
        UniqueConstraint("member_id", "local_day", name="uq_checkin_member_day"),
        Index("ix_checkin_unit_day", "unit_id", "local_day"),
        # One day's check-ins of an organisation together, with what the figures read.
        Index("ix_checkin_org_day_member", "org_id", "local_day", "member_id", "abnormal"),
        # What the retention purge has still to look at (storage.retention).
        Index("ix_checkin_retention", "org_id", "retention_applied", "local_day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    unit_id: int = Field(foreign_key="unit.id")
    member_id: int = Field(foreign_key="member.id")
    local_day: date
    version: int = 1
    submitted_at: datetime = Field(sa_column=_utc())
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    live: bool = False
    country: str | None = Field(default=None, max_length=100)
    province: str | None = Field(default=None, max_length=100)
    city: str | None = Field(default=None, max_length=100)
    outside_geofence: bool = False
    abnormal: bool = False
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    form: str = Field(max_length=64)
    form_version: int = 1
    # The longest retention period (days) already applied to its answers (storage.retention).
    retention_applied: int = 0
    # The channel it was submitted from ("telegram", "wecom"); None: from before 0014.
    channel: str | None = Field(default=None, max_length=16)


class CheckInRevision(SQLModel, table=True):
    """Every submitted version of a check-in, kept for the audit trail."""

    __table_args__ = (
        UniqueConstraint("member_id", "local_day", "version", name="uq_revision_version"),
        UniqueConstraint("update_id", name="uq_revision_update"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id")
    local_day: date
    version: int
    submitted_at: datetime = Field(sa_column=_utc())
    update_id: int | None = Field(default=None, sa_type=BigInteger)
    abnormal: bool = False
    answers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    channel: str | None = Field(default=None, max_length=16)


class Photo(SQLModel, table=True):
    """A photo a member answered a form's photo question with, kept here: WeCom serves a
    member's image for 3 days only. It goes with its answer (retention, by member, day and
    question) and with the member's erasure; the answer holds `media:<id>`."""

    __table_args__ = (Index("ix_photo_member_day", "member_id", "local_day"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    member_id: int = Field(foreign_key="member.id")
    local_day: date
    question: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content_type: str = Field(max_length=32)
    size: int
    channel: str = Field(max_length=16)
    created_at: datetime = Field(sa_column=_utc())


class EnrolAttempt(SQLModel, table=True):
    """Each try to bind an account to a roster entry, kept for lockout and audit."""

    __table_args__ = (Index("ix_enrol_attempt_who", "account_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    org_id: int = Field(foreign_key="organisation.id")
    external_id: str = Field(max_length=64)
    outcome: str = Field(max_length=32)
    at: datetime = Field(sa_column=_utc())


class AuditEntry(SQLModel, table=True):
    """Who read or changed what; PIPL asks for a trail of access to personal data."""

    __table_args__ = (Index("ix_audit_org_at", "org_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int | None = Field(default=None, foreign_key="organisation.id")
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64)
    subject: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(sa_column=_utc())


class InboundUpdate(SQLModel, table=True):
    """The update journal: each update handled, with the replies it produced until they are
    sent. A row commits with the update's effects, before the update is confirmed to Telegram."""

    __table_args__ = (
        Index("ix_inbound_unhandled", "handled_at"),
        Index("ix_inbound_unreplied", "replied_at"),
    )

    update_id: int = Field(
        primary_key=True, sa_type=BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    payload: str
    received_at: datetime = Field(sa_column=_utc())
    handled_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    attempts: int = 0
    replies: str | None = None
    replied_at: datetime | None = Field(default=None, sa_column=_utc_opt())


class InboundEvent(SQLModel, table=True):
    """The journal of a channel whose deliveries are named by text (WeCom: a MsgId, or the
    sender and time of an event): each event, written before the channel is told it arrived,
    until it is handled; then the replies it produced, until they are sent. Telegram's updates,
    named by number, have their own journal (`InboundUpdate`)."""

    __table_args__ = (
        UniqueConstraint("channel", "key", name="uq_inbound_event_key"),
        Index("ix_inbound_event_unhandled", "channel", "handled_at"),
        Index("ix_inbound_event_unreplied", "channel", "replied_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    key: str = Field(max_length=64)  # a digest of the channel's own name of the delivery
    sender: str = Field(max_length=64)
    payload: str | None = None  # the event, until handled (it holds what people sent)
    received_at: datetime = Field(sa_column=_utc())
    handled_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    replies: str | None = None
    replied_at: datetime | None = Field(default=None, sa_column=_utc_opt())


class OrgChannel(SQLModel, table=True):
    """How an organisation is served on a channel beside Telegram: the channel's app that serves
    it (one app, one organisation), whether the channel's user ids are the roster's member ids
    (a member is then bound on first contact, after consent), and whether it is shown text
    only (numbered choices instead of buttons)."""

    __table_args__ = (
        UniqueConstraint("org_id", "channel", name="uq_orgchannel_org"),
        UniqueConstraint("channel", "app_id", name="uq_orgchannel_app"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    channel: str = Field(max_length=16)
    app_id: str | None = Field(default=None, max_length=64)
    ids_are_member_ids: bool = False
    text_only: bool = False


class FsmRecord(SQLModel, table=True):
    """aiogram FSM state and data, kept in the database so a draft survives a restart."""

    key: str = Field(primary_key=True, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Excuse(SQLModel, table=True):
    """A member is excused (leave, sick, holiday) for a range of local days, both ends included."""

    __table_args__ = (Index("ix_excuse_member_days", "member_id", "first_day", "last_day"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    member_id: int = Field(foreign_key="member.id")
    first_day: date
    last_day: date
    reason: str = Field(max_length=200)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_utc())


class Holiday(SQLModel, table=True):
    """A local day with no check-in for the whole organisation."""

    org_id: int = Field(foreign_key="organisation.id", primary_key=True)
    day: date = Field(primary_key=True)


class UnitHoliday(SQLModel, table=True):
    """A local day with no check-in for one unit and everything under it."""

    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    day: date = Field(primary_key=True)


class Schedule(SQLModel, table=True):
    """Reminder slots, cutoff and report time (local), and counted weekdays, for an organisation
    (`scope` "org") or a unit and its subtree (`scope` "unit:ID")."""

    __table_args__ = (UniqueConstraint("org_id", "scope", name="uq_schedule_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    scope: str = Field(max_length=32)
    unit_id: int | None = Field(default=None, foreign_key="unit.id")
    remind: str = Field(default="08:00,10:00,12:00", max_length=200)
    cutoff: str = Field(default="14:00", max_length=5)
    report: str = Field(default="15:00", max_length=5)
    days: str = Field(default="mon,tue,wed,thu,fri,sat,sun", max_length=64)


class SlotRun(SQLModel, table=True):
    """A scheduled round that has been claimed: its uniqueness makes each slot run once, even
    with two scheduler processes."""

    __table_args__ = (UniqueConstraint("org_id", "scope", "day", "slot", name="uq_slotrun"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    scope: str = Field(max_length=32)
    day: date
    slot: str = Field(max_length=32)
    started_at: datetime = Field(sa_column=_utc())
    due: int = 0


class Outbox(SQLModel, table=True):
    """A message the scheduler decided to send; unique per (recipient, day, kind, slot), so a
    round that runs again enqueues nothing twice. The sender drains it, handing each letter to
    the courier of its channel.

    The content is neutral: `text` in Daka's light markup (escaped text with <b>, <i>, <code>,
    <a href>) and `options` in rows of {"label", "key"} or {"label", "url"} (`domain.keys`);
    the recipient is an `address` on a `channel` (a Telegram chat id, as text, on "telegram")."""

    __table_args__ = (
        UniqueConstraint("channel", "address", "day", "kind", "slot", name="uq_outbox_message"),
        Index("ix_outbox_due", "status", "not_before"),
        Index("ix_outbox_round", "org_id", "day", "kind", "slot"),
        Index("ix_outbox_claim", "claimed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    channel: str = Field(max_length=16)
    address: str = Field(max_length=64)
    member_id: int | None = Field(default=None, foreign_key="member.id")
    kind: str = Field(max_length=16)
    day: date
    slot: str = Field(max_length=64)
    text: str
    options: list[list[dict[str, str]]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    not_before: datetime = Field(sa_column=_utc())
    claimed_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    claimed_by: str | None = Field(default=None, max_length=32)
    sent_at: datetime | None = Field(default=None, sa_column=_utc_opt())
    error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=_utc())
