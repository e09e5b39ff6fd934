"""The repository holder: one session, every repository on it. The repositories themselves live
in storage.repos, one module each; the names other code imports are re-exported here."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from storage.repos.accounts import AccountRepo
from storage.repos.audit import AuditRepo
from storage.repos.channels import ChannelRepo, Served
from storage.repos.checkins import CheckInRepo, Submission
from storage.repos.common import Conflict, NotFound, dialect_insert, upsert_many
from storage.repos.inbox import InboxRepo, Pending
from storage.repos.invites import InviteRepo
from storage.repos.journal import JournalRepo
from storage.repos.members import MemberRepo, MemberRow, RosterResult, RosterRow
from storage.repos.orgs import OrgRepo
from storage.repos.photos import PhotoRepo
from storage.repos.privacy import PrivacyRepo
from storage.repos.roles import RoleRepo
from storage.repos.units import UnitRepo, split_unit_path

__all__ = [
    "AccountRepo",
    "AuditRepo",
    "ChannelRepo",
    "CheckInRepo",
    "Conflict",
    "InboxRepo",
    "InviteRepo",
    "JournalRepo",
    "MemberRepo",
    "MemberRow",
    "NotFound",
    "OrgRepo",
    "Pending",
    "PhotoRepo",
    "PrivacyRepo",
    "Repo",
    "RoleRepo",
    "RosterResult",
    "RosterRow",
    "Served",
    "Submission",
    "UnitRepo",
    "dialect_insert",
    "split_unit_path",
    "upsert_many",
]


class Repo:
    """The repository holder a handler receives: one session, every repository on it."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.orgs = OrgRepo(session)
        self.units = UnitRepo(session)
        self.members = MemberRepo(session)
        self.invites = InviteRepo(session)
        self.accounts = AccountRepo(session)
        self.roles = RoleRepo(session)
        self.checkins = CheckInRepo(session)
        self.audit = AuditRepo(session)
        self.journal = JournalRepo(session)
        self.privacy = PrivacyRepo(session)
        self.inbox = InboxRepo(session)
        self.channels = ChannelRepo(session)
        self.photos = PhotoRepo(session)
