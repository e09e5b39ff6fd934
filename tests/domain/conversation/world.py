"""A world for tests of the conversation core: a real SQLite database (migrated once per test
process, copied per test), a hand-moved clock, and people whose turns run as the Telegram
adapter runs them (one session and one commit per turn, the visitor loaded afresh, the
language chosen as `handlers.telegram.i18n` chooses it), without any channel or HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlmodel import SQLModel, select

from domain.clock import FixedClock
from domain.conversation.dispatch import Services, converse
from domain.conversation.io import CollectingOut, Input, MemoryState, Person, Said
from domain.conversation.turn import Turn, Visitor, load_visitors
from domain.delivery import TELEGRAM
from domain.geo import Place
from domain.i18n import LOCALE_OF, create_translator
from storage.conversation_state import StoredState
from storage.db import SessionFactory, create_engine, create_session_factory
from storage.migrate import upgrade
from storage.models import Account
from storage.repo import Repo
from tests.storage.seeding import Seeding

FIRST_SCHOOL = [
    ("College/Class 1", "2024001", "Zhang San"),
    ("College/Class 1", "2024002", "Li Si"),
    ("College/Class 2", "2024003", "Wang Wu"),
    ("Arts/Class A", "A100", "Alice Smith"),
]

T = TypeVar("T")
M = TypeVar("M", bound=SQLModel)


async def migrated_copy(template: Path, target: Path) -> str:
    """The URL of a migrated SQLite file at `target`, copied from `template` (made once)."""
    if not await asyncio.to_thread(template.exists):
        building = template.with_suffix(".building")
        engine = create_engine(f"sqlite+aiosqlite:///{building}")
        await upgrade(engine)
        await engine.dispose()
        await asyncio.to_thread(building.rename, template)
    await asyncio.to_thread(shutil.copyfile, template, target)
    return f"sqlite+aiosqlite:///{target}"


def places(lat: float, lon: float) -> Place | None:
    """Beijing north of 30°, Shenzhen south of it (the real resolver loads a table)."""
    if lat > 30:
        return Place("CN", "中国", "北京市", "北京市")
    return Place("CN", "中国", "广东省", "深圳市")


@dataclass
class World(Seeding):
    """Turns of people as their adapters play them; seeding (`Seeding`) of an English-speaking
    "First School" with `FIRST_SCHOOL` unless told."""

    ORG_NAME = "First School"
    ORG_LANGUAGE = "en"
    ROSTER = FIRST_SCHOOL

    clock: FixedClock
    sessions: SessionFactory
    states: dict[int, MemoryState] = field(default_factory=dict)
    org_ids: dict[str, int] = field(default_factory=dict)
    languages: dict[int, str | None] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # what `fetch` downloads, by ref
    woken: int = 0  # times the outbox sender was woken
    recorded: int = 0  # check-ins counted
    granted: list[tuple[str, str]] = field(default_factory=list)  # (external id, role)

    @property
    def services(self) -> Services:
        """What a channel hands the dispatcher, counting what it is told."""

        async def fetch(ref: str) -> bytes:
            return self.files[ref]

        def wake() -> None:
            self.woken += 1

        def recorded() -> None:
            self.recorded += 1

        async def granted(turn: Turn, role: str) -> None:
            self.granted.append((turn.person.external_id, role))

        return Services(resolve=places, fetch=fetch, wake=wake, recorded=recorded, granted=granted)

    async def say(self, who: int, given: Input) -> list[Said]:
        """`given` from `who` as one update, routed as every channel routes it
        (domain.conversation.dispatch)."""
        return await self.turn(who, converse, given, self.services)

    async def say_on(self, channel: str, external_id: str, given: Input) -> list[Said]:
        """`given` from a person of another channel than Telegram, as its adapter answers
        it: their conversation in the database (storage.conversation_state), committed with
        the turn."""
        out = CollectingOut()
        i18n = create_translator()
        async with self.sessions() as session:
            repo = Repo(session)
            visitors = await load_visitors(repo, channel=channel, external_ids=[external_id])
            visitor = visitors[external_id]
            state = StoredState(session, channel=channel, external_id=external_id)
            turn = Turn(Person(channel, external_id, "en"), visitor, repo, self.clock, state, out)
            with i18n.context(), i18n.use_locale(locale_of(visitor, "en")):
                await converse(turn, given, self.services)
            await session.commit()
        return out.said

    async def account_of(self, telegram_id: int) -> Account:
        """The account of Telegram user `telegram_id` (which must have one), found through
        its identity."""
        async with self.sessions() as session:
            accounts = await Repo(session).accounts.by_identities(
                channel=TELEGRAM, external_ids=[str(telegram_id)]
            )
        assert str(telegram_id) in accounts, f"no account of Telegram user {telegram_id}"
        return accounts[str(telegram_id)]

    async def account_id_of(self, telegram_id: int) -> int:
        """The id of the account of Telegram user `telegram_id` (which must have one)."""
        account_id = (await self.account_of(telegram_id)).id
        assert account_id is not None
        return account_id

    async def rows(self, model: type[M]) -> list[M]:
        async with self.sessions() as session:
            return list((await session.exec(select(model))).all())

    async def using(self, work: Callable[[Repo], Awaitable[T]]) -> T:
        """Something done straight in the database (seeding), committed."""
        async with self.sessions() as session:
            result = await work(Repo(session))
            await session.commit()
            return result

    def speaks(self, telegram_id: int, language: str | None) -> None:
        """The language `telegram_id`'s channel gives ("en" unless told; None: one we do not
        speak)."""
        self.languages[telegram_id] = language

    def state(self, telegram_id: int) -> MemoryState:
        return self.states.setdefault(telegram_id, MemoryState())

    async def turn(
        self, telegram_id: int, handler: Callable[..., Awaitable[Any]], *args: Any
    ) -> list[Said]:
        """`handler(turn, *args)` as one update of `telegram_id`: everything said."""
        said, _result = await self.run(telegram_id, handler, *args)
        return said

    async def run(
        self, telegram_id: int, handler: Callable[..., Awaitable[T]], *args: Any
    ) -> tuple[list[Said], T]:
        """`handler(turn, *args)` as one update; everything said, and what the handler
        returned."""
        out = CollectingOut()
        language = self.languages.setdefault(telegram_id, "en")
        person = Person(TELEGRAM, str(telegram_id), language)
        i18n = create_translator()
        async with self.sessions() as session:
            repo = Repo(session)
            visitor = await load_visitor(repo, telegram_id)
            turn = Turn(person, visitor, repo, self.clock, self.state(telegram_id), out)
            with i18n.context(), i18n.use_locale(locale_of(visitor, language)):
                result = await handler(turn, *args)
            await session.commit()
        return out.said, result


def locale_of(visitor: Visitor, hint: str | None) -> str:
    """As every adapter: the core's rule (`Visitor.language`)."""
    return LOCALE_OF[visitor.language(hint)]


async def load_visitor(repo: Repo, telegram_id: int) -> Visitor:
    """As handlers.telegram.middlewares.load_visitors, for one Telegram user."""
    external_id = str(telegram_id)
    visitors = await load_visitors(repo, channel=TELEGRAM, external_ids=[external_id])
    return visitors[external_id]


@contextlib.asynccontextmanager
async def open_world(clock: FixedClock, template: Path, directory: Path) -> AsyncIterator[World]:
    url = await migrated_copy(template, directory / "daka.db")
    engine = create_engine(url)
    try:
        yield World(clock=clock, sessions=create_session_factory(engine))
    finally:
        await engine.dispose()
