"""Fixtures of the managers' core tests."""

from tests.domain.conversation.managers.managers_world import school_file, world  # noqa: F401
