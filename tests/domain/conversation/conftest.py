"""Fixtures of the conversation core's tests."""

from tests.domain.conversation.managers_world import school_file, world  # noqa: F401
