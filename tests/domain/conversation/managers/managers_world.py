"""The world of the managers' core tests: the school of the Telegram stories (tests/handlers/
conftest.py `school`), seeded straight into a real SQLite database (once; each test copies the
file), and turns played into the core with a `CollectingOut` and a `MemoryState` (no channel,
no HTTP)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.clock import FixedClock
from domain.conversation import managers
from domain.conversation.io import CollectingOut, Command, MemoryState, Person, Press
from domain.conversation.turn import Turn
from domain.i18n import speaking
from handlers.telegram.middlewares import load_visitors
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from storage.repo import Repo
from storage.scope import Scope
from tests.conftest import MORNING
from tests.storage.seeding import Seeding, check_in, roster_member

DAY = date(2026, 11, 28)  # the organisation's today at the `clock` fixture's morning
ISO = DAY.isoformat()
CLASS_ONE, COLLEGE, ADMIN, UNITS, TWO_ORGS = 700, 701, 702, 730, 903
ZHANG, LI, WANG = 801, 802, 803
NO_LONGER_VALID = "此按钮已失效。"
REFUSAL = "此命令仅供辅导员、村干部和管理员使用。"

Call = Callable[[Turn, Scope | None], Awaitable[object]]


@dataclass
class World(Seeding):
    """Turns of managers played into the core; seeding of the stories' school (`Seeding`)."""

    sessions: SessionFactory
    engine: AsyncEngine
    clock: FixedClock
    org_ids: dict[str, int] = field(default_factory=dict)
    states: dict[int, MemoryState] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list)

    async def member_id(self, external_id: str, slug: str = "school") -> int:
        member_id = (await self.member(external_id, slug)).id
        assert member_id is not None
        return member_id

    def state(self, telegram_id: int) -> MemoryState:
        return self.states.setdefault(telegram_id, MemoryState())

    async def turn(self, who: int, call: Call, *, language: str = "zh") -> CollectingOut:
        """One turn of `who` (their scope resolved as the gate does), committed after."""
        out = CollectingOut()
        async with self.sessions() as session:
            repo = Repo(session)
            visitor = (await load_visitors(repo, [who]))[who]
            person = Person("telegram", str(who), language)
            turn = Turn(person, visitor, repo, self.clock, self.state(who), out)
            with speaking(language):
                await call(turn, managers.scope_of(visitor))
            await session.commit()
        return out

    async def command(self, who: int, text: str, *, language: str = "zh") -> CollectingOut:
        name, _, args = text.removeprefix("/").partition(" ")

        async def call(turn: Turn, scope: Scope | None) -> object:
            return await managers.on_command(turn, scope, Command(name, args))

        return await self.turn(who, call, language=language)

    async def press(self, who: int, key: str) -> CollectingOut:
        async def call(turn: Turn, scope: Scope | None) -> object:
            return await managers.on_press(turn, scope, Press(key))

        return await self.turn(who, call)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        """The SQL statements run inside the block."""

        def seen(*args: object) -> None:
            self.statements.append(str(args[2]))

        self.statements.clear()
        event.listen(self.engine.sync_engine, "before_cursor_execute", seen)
        try:
            yield self.statements
        finally:
            event.remove(self.engine.sync_engine, "before_cursor_execute", seen)


async def seed_school(made: World) -> None:
    """The school: managers of a class, of its college and of everything; 张三, 李四 and 王五
    enrolled (Alice never), 张三 checked in from 北京市 with a fever."""
    await made.org()
    await made.grant(CLASS_ONE, "工程学院/一班")
    await made.grant(COLLEGE, "工程学院")
    await made.grant(ADMIN, None, role="admin")
    await made.bind((ZHANG, "2024001"), (LI, "2024002"), (WANG, "2024003"))
    async with made.seeding() as repo:
        zhang = await roster_member(repo, org_id=made.org_ids["school"], member_id="2024001")
        await check_in(
            repo,
            member=zhang,
            day=DAY,
            abnormal=True,
            now=made.clock.now(),
            answers={"temperature": 37.8},
            city=("北京市", "北京市"),
        )


@pytest.fixture(scope="session")
def school_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """The school migrated and seeded once, in a SQLite file each test copies."""
    path = tmp_path_factory.mktemp("managers") / "school.db"

    async def build() -> dict[str, int]:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            made = World(create_session_factory(engine), engine, FixedClock(MORNING))
            await seed_school(made)
            return made.org_ids
        finally:
            await engine.dispose()

    return path, asyncio.run(build())


@pytest.fixture
async def world(
    school_file: tuple[Path, dict[str, int]], tmp_path: Path, clock: FixedClock
) -> AsyncIterator[World]:
    """A copy of the school of its own, on a SQLite file."""
    template, org_ids = school_file
    path = tmp_path / "daka.db"
    shutil.copyfile(template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        yield World(create_session_factory(engine), engine, clock, dict(org_ids))
    finally:
        await engine.dispose()
