"""The world the conversation core's tests talk in (tests/domain/conversation/world.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from domain.clock import FixedClock
from tests.domain.conversation.world import World, open_world


@pytest.fixture
async def world(
    clock: FixedClock, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    template = tmp_path_factory.getbasetemp() / "conversation-template.db"
    async with open_world(clock, template, tmp_path) as opened:
        yield opened
