"""A running bot plus the scheduler's rounds and sender, on a clock the tests move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.app import channels_of, create_couriers
from domain.clock import FixedClock
from domain.i18n import create_translator
from scheduler.rounds import RoundResult, Rounds
from scheduler.sender import Sender, SendStats
from tests.fakebot import FakeBotAPI
from tests.handlers.conftest import Daka, running_daka

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 30)
# Monday 2026-11-30, 07:59 in Shanghai.
MONDAY_EARLY = datetime(2026, 11, 29, 23, 59, tzinfo=UTC)

ROSTER = [
    ("工程学院/一班", "1001", "张三"),
    ("工程学院/一班", "1002", "李四"),
    ("工程学院/一班", "1003", "王五"),
    ("工程学院/二班", "2001", "赵六"),
    ("工程学院/二班", "2002", "孙七"),
    ("文学院/甲班", "3001", "周八"),
]


@dataclass
class School:
    daka: Daka
    server: FakeBotAPI
    rounds: Rounds
    sender: Sender

    @property
    def clock(self) -> FixedClock:
        return self.daka.clock

    async def at(self, hhmm: str, on: date = MONDAY) -> list[RoundResult]:
        """Move the clock to local HH:MM on `on` (Monday 2026-11-30) and run the due rounds."""
        hours, minutes = (int(p) for p in hhmm.split(":"))
        self.clock.set(datetime.combine(on, time(hours, minutes), tzinfo=SHANGHAI))
        return await self.rounds.tick()

    async def send(self) -> SendStats:
        return await self.sender.drain()

    async def enrol(self, telegram_id: int, external_id: str) -> None:
        await self.daka.bind((telegram_id, external_id))

    async def grant(self, telegram_id: int, unit: str | None, role: str = "manager") -> None:
        await self.daka.grant(telegram_id, unit, role=role)


@pytest.fixture
async def school(server: FakeBotAPI, migrated_sqlite_url: str) -> AsyncIterator[School]:
    clock = FixedClock(MONDAY_EARLY)
    async with running_daka(server, clock, migrated_sqlite_url) as daka:
        await daka.org(roster=ROSTER)
        assert daka.bot is not None
        couriers = create_couriers(daka.bot, send_rate=200)
        rounds = Rounds(daka.sessions, clock, create_translator(), channels_of(couriers))
        sender = Sender(couriers, daka.sessions, clock)
        yield School(daka=daka, server=server, rounds=rounds, sender=sender)
