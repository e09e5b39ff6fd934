"""A fake WeCom corp with one app and two members, and Daka's API client pointed at it over
real HTTP, on the tests' hand-moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from domain.clock import FixedClock
from handlers.wecom.api import App, WeComAPI
from storage.db import SessionFactory
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.world import WeComDaka, running_wecom

AGENT = 1000002
SECRET = "daka-app-secret-0123456789"


@pytest.fixture
async def wecom(clock: FixedClock) -> AsyncIterator[LocalWeCom]:
    async with LocalWeCom(clock=clock) as server:
        server.add_app(AGENT, SECRET)
        server.add_members("zhangsan", "lisi")
        yield server
        assert server.problems == []  # nothing WeCom would have quietly cut or dropped


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
def api(wecom: LocalWeCom, session: aiohttp.ClientSession, clock: FixedClock) -> WeComAPI:
    return WeComAPI(session, App(wecom.corp_id, AGENT, SECRET), base_url=wecom.url, clock=clock)


@pytest.fixture
async def app(
    clock: FixedClock, database_url: str, sessions: SessionFactory
) -> AsyncIterator[WeComDaka]:
    """Daka serving the WeCom app (`tests.handlers.wecom.world`), on SQLite and PostgreSQL."""
    async with running_wecom(clock, database_url, sessions) as world:
        yield world
