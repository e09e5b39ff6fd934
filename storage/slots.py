"""How outbox slots name what a letter is about, where more than one module reads them."""

from __future__ import annotations


def alert_slot(member_id: int, version: int) -> str:
    """The slot of the alerts of one version of a member's check-in: one per manager."""
    return f"m{member_id}v{version}"


def alerts_about(member_id: int) -> str:
    """A LIKE pattern of the slots of every alert about the member (erasure deletes them:
    their text holds the abnormal answers)."""
    return f"m{member_id}v%"
