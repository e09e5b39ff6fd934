"""Enrolment rules: which invite codes are usable, when an account is locked out, name matching."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

# The consent notice's version: 2 states each answer's period and the right to withdraw.
CONSENT_VERSION = 2
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=30)
ROLES = ("member", "manager", "admin")
_CODE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


class InviteProblem(StrEnum):
    """Why an invite cannot be used; each gets its own answer."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    USED_UP = "used_up"


def code_is_well_formed(code: str) -> bool:
    """Codes are URL-safe base64 of at least 96 random bits; anything else is not ours."""
    return bool(_CODE.match(code))


def new_invite_code(token: Callable[[int], str] = secrets.token_urlsafe) -> str:
    """A fresh code: 96 random bits as URL-safe base64 (16 characters), never beginning with
    "-", which a command line such as `daka invite revoke CODE` would take for an option."""
    while True:
        code = token(12)
        if not code.startswith("-"):
            return code


def invite_problem(
    *,
    expires_at: datetime,
    revoked_at: datetime | None,
    max_uses: int | None,
    uses: int,
    now: datetime,
) -> InviteProblem | None:
    """The reason an existing invite cannot be used now, if any (revocation wins)."""
    if revoked_at is not None:
        return InviteProblem.REVOKED
    if now >= expires_at:
        return InviteProblem.EXPIRED
    if max_uses is not None and uses >= max_uses:
        return InviteProblem.USED_UP
    return None


def locked(locked_until: datetime | None, now: datetime) -> bool:
    """Whether enrolment is paused for this account."""
    return locked_until is not None and now < locked_until


def after_failure(failed_attempts: int, now: datetime) -> tuple[int, datetime | None]:
    """Count one more wrong answer; the fifth in a row locks the account for a while."""
    count = failed_attempts + 1
    if count >= MAX_FAILURES:
        return 0, now + LOCKOUT
    return count, None


def normalise_name(name: str) -> str:
    """Names compare without width, case or inner spaces: "张 三" equals "张三"."""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if not ch.isspace() and ch not in "·•・.")


def names_match(roster_name: str, given: str) -> bool:
    """A claimed name matches the roster's when they are equal after normalising."""
    return bool(normalise_name(given)) and normalise_name(roster_name) == normalise_name(given)


def normalise_member_id(text: str) -> str:
    """Member ids are typed on phones: drop spaces and full-width forms."""
    return "".join(unicodedata.normalize("NFKC", text).split())
