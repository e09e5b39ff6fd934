"""Fuzzing the whole update pipeline: Hypothesis plays mixed sequences of junk, tampered and
group-chat updates beside real check-ins and a real manager's presses into the real dispatcher
(long polling against the fake Bot API, a SQLite file), and checks after every update:

- no handler failed (no ERROR log record, no traceback, the error handler never ran);
- every private message from a person got an answer in their chat, every button press an
  answer of its own;
- a group got nothing but the one line that points to the private chat, and only for a
  command addressed to Daka by a person;
- nobody was shown anything outside their scope: no unit or member of the other
  organisation, and, for a member or a class counselor, nobody else's name; a manager of
  several units nothing outside them; a manager of both organisations nothing of either
  before choosing one (`unseen`, `BEFORE_CHOOSING`).

Seeded (derandomized) and bounded; each example runs on a fresh copy of one prepared world."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pkgutil
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram.filters.callback_data import CallbackData
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlmodel import delete

import handlers.telegram
from domain.clock import FixedClock
from storage.models import InboundUpdate
from tests.conftest import MORNING
from tests.fakebot import FakeBotAPI, FakeUser, SentMessage
from tests.handlers.chats import (
    ANONYMOUS_ADMIN,
    CHANNEL,
    GROUP,
    OTHER_BOT,
    SUPERGROUP,
    bot_added_to,
    message_in,
    press_in,
    update,
)
from tests.handlers.conftest import Daka, running_daka

ZHANG, LI, COUNSELOR, SCHOOL_ADMIN, STRANGER = 801, 802, 700, 702, 999
ZHAO, VILLAGE_ADMIN = 901, 902
UNITS_MANAGER, TWO_ORGS_MANAGER = 703, 903  # grants over several units; in both organisations
PEOPLE: tuple[int, ...] = (ZHANG, LI, COUNSELOR, SCHOOL_ADMIN, STRANGER, ZHAO, VILLAGE_ADMIN)
PEOPLE += (UNITS_MANAGER, TWO_ORGS_MANAGER)
MEMBERS = (ZHANG, LI, ZHAO)
MANAGERS = (COUNSELOR, SCHOOL_ADMIN, VILLAGE_ADMIN, UNITS_MANAGER, TWO_ORGS_MANAGER)

SCHOOL_ROSTER = [
    ("工程学院/一班", "2024001", "张三"),
    ("工程学院/一班", "2024002", "李四"),
    ("工程学院/二班", "2024003", "王五"),
    ("Arts/Class A", "A100", "Alice Smith"),
]
VILLAGE_ROSTER = [
    ("东村/一组", "V001", "赵六六"),
    ("东村/一组", "V002", "钱七七"),
    ("西村/二组", "V003", "孙八八"),
]
SCHOOL_NAMES = {"工程学院", "一班", "二班", "Arts", "Class A", "张三", "李四", "王五", "Alice"}
SCHOOL_NAMES |= {"2024001", "2024002", "2024003", "A100"}
VILLAGE_NAMES = {"东村", "西村", "一组", "二组", "赵六六", "钱七七", "孙八八"}
VILLAGE_NAMES |= {"V001", "V002", "V003"}
ORG_NAMES = {"school": "第一中学", "village": "柳树湾村"}
ROSTERS = {"school": SCHOOL_ROSTER, "village": VILLAGE_ROSTER}
# Unit grants of the managers of units (organisation -> unit paths), and the whole ones.
UNIT_GRANTS: dict[int, dict[str, tuple[str, ...]]] = {
    COUNSELOR: {"school": ("工程学院/一班",)},
    UNITS_MANAGER: {"school": ("工程学院/二班", "Arts/Class A")},
    TWO_ORGS_MANAGER: {"school": ("工程学院/一班",), "village": ("西村/二组",)},
}


def unseen(grants: dict[str, tuple[str, ...]]) -> set[str]:
    """What a manager with these unit grants must never be shown: every name of an
    organisation they hold no grant in (its own name too); in the others, every unit name,
    member name and member id that lies outside the subtrees of their grants. The names of a
    granted unit's ancestors are part of the paths they are shown, so they are not secret."""
    secret: set[str] = set()
    seen = {part for paths in grants.values() for path in paths for part in path.split("/")}
    for slug, roster in ROSTERS.items():
        paths = grants.get(slug, ())
        if not paths:
            secret.add(ORG_NAMES[slug])
        for unit, external_id, name in roster:
            words = {*unit.split("/"), external_id, name}
            inside = any(unit == p or unit.startswith(p + "/") for p in paths)
            (seen if inside else secret).update(words)
    return secret - seen


# Until a manager of both organisations has chosen one ("已切换到…"), no unit or member of
# either: the choice names the organisations and nothing in them.
CHOSEN = "已切换到"
BEFORE_CHOOSING = {w for roster in ROSTERS.values() for line in roster for w in line}
BEFORE_CHOOSING |= {
    p for roster in ROSTERS.values() for line in roster for p in line[0].split("/")
}

OUTSIDE: dict[int, set[str]] = {
    ZHANG: VILLAGE_NAMES | {"李四", "王五", "Alice", "2024002", "2024003", "A100", "二班"},
    LI: VILLAGE_NAMES | {"张三", "王五", "Alice", "2024001", "2024003", "A100", "二班"},
    COUNSELOR: VILLAGE_NAMES | {"二班", "王五", "Arts", "Alice", "2024003", "A100"},
    SCHOOL_ADMIN: VILLAGE_NAMES,
    STRANGER: VILLAGE_NAMES | SCHOOL_NAMES,
    ZHAO: SCHOOL_NAMES | {"钱七七", "孙八八", "V002", "V003", "西村", "二组"},
    VILLAGE_ADMIN: SCHOOL_NAMES,
    UNITS_MANAGER: unseen(UNIT_GRANTS[UNITS_MANAGER]),
    TWO_ORGS_MANAGER: unseen(UNIT_GRANTS[TWO_ORGS_MANAGER]),
}

GROUPS = (GROUP, SUPERGROUP)
LINES = {
    "Daka 只在私聊中回复：https://t.me/daka_test_bot",
    "Daka answers in a private chat only: https://t.me/daka_test_bot",
}
SHOWING = {"sendMessage", "sendDocument", "sendPhoto", "sendLocation", "editMessageText"}
SHOWING |= {"editMessageReplyMarkup", "editMessageCaption"}

COMMANDS = [
    "/start", "/help", "/checkin", "/today", "/history", "/mydata", "/withdraw", "/language",
    "/cancel", "/summary", "/missing", "/abnormal", "/member", "/export", "/export csv", "/where",
    "/trend", "/excuse", "/roster", "/schedule", "/dance", "/start@daka_test_bot",
]  # fmt: skip
ARGS = [
    "", "2026-11-28", "9999-12-31", "0001-01-01", "2026-02-30", "-1", "0", "99999999999999",
    str(2**63), str(2**70), "V001", "2024003", "A100", "2024001 2026-11-28 2026-11-29 病假",
    "V002 2026-11-28 9999-12-31 x", "2026-11-01 9999-12-31", "csv 0001-01-01 9999-12-31",
    "365", "100000", "<b>", "'; DROP TABLE member; --", "东村/一组",
]  # fmt: skip
INTS = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, -1, -(2**31), 2**31, 2**63 - 1, 2**63, 2**70, -(2**70)]
WORDS = ["", "2026-11-28", "9999-12-31", "0001-01-01", "missing", "abnormal", "confirm", "edit"]
WORDS += ["cancel", "pick", "back", "zh", "en", "fr", "__done", "__skip", "__yes", "__no"]
WORDS += ["none", "fever", "location", "temperature", "photo", "deadbeef", "9K5oeNReWe0yFxv5"]


# A longer hunt: DAKA_FUZZ_EXAMPLES=500 DAKA_FUZZ_SEED=7 pytest tests/test_fuzz.py
EXAMPLES = int(os.environ.get("DAKA_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("DAKA_FUZZ_SEED") or None


@dataclass
class World:
    """The running bot of one example and what the checks need to remember."""

    daka: Daka
    server: FakeBotAPI
    typed: dict[int, list[str]] = field(default_factory=dict)
    failures: Failures | None = None

    def assert_no_failure(self, event: Event) -> None:
        records = self.failures.records if self.failures is not None else []
        assert not records, (event, [r.getMessage() for r in records])

    def user(self, telegram_id: int) -> FakeUser:
        language = "en" if telegram_id in (LI, VILLAGE_ADMIN) else "zh-hans"
        return self.server.user(telegram_id, language_code=language)

    def shown_in(self, chat_id: int, since: int) -> list[Any]:
        return [
            c for c in self.server.calls[since:] if c.chat_id == chat_id and c.method in SHOWING
        ]

    def inline_message(self, telegram_id: int) -> SentMessage | None:
        for message in reversed(self.server.messages(telegram_id)):
            if message.inline_keyboard:
                return message
        return None

    async def settled(self) -> None:
        await self.daka.settled()


class Event:
    """One thing a client does; `play` does it and checks what came back."""

    async def play(self, world: World) -> None:
        raise NotImplementedError


@dataclass
class Say(Event):
    """A person writes to Daka in their private chat."""

    who: int
    text: str

    async def play(self, world: World) -> None:
        world.typed.setdefault(self.who, []).append(self.text)
        since = len(world.server.calls)
        world.user(self.who).send(self.text)
        await world.settled()
        assert world.shown_in(self.who, since), f"{self.who} got no answer to {self.text!r}"


@dataclass
class Locate(Event):
    who: int
    lat: float
    lon: float

    async def play(self, world: World) -> None:
        since = len(world.server.calls)
        world.user(self.who).send_location(self.lat, self.lon)
        await world.settled()
        assert world.shown_in(self.who, since), f"{self.who}: no answer to a location"


@dataclass
class Press(Event):
    """A press with this data under the person's latest message (forged or stale)."""

    who: int
    data: str

    async def play(self, world: World) -> None:
        world.typed.setdefault(self.who, []).append(self.data)
        user = world.user(self.who)
        under = world.inline_message(self.who)
        if under is None:  # under a message of Daka's that is gone from the server's memory
            update_id = world.server.push_update(
                {"callback_query": press_in(user.chat_dict, user, self.data)}
            )
        else:
            update_id = user.press(under, self.data)
        await world.settled()
        assert_answered(world, update_id)


@dataclass
class PressReal(Event):
    """A press of a button Daka really offered: the n-th of the latest inline keyboard."""

    who: int
    n: int

    async def play(self, world: World) -> None:
        user = world.user(self.who)
        under = world.inline_message(self.who)
        if under is None:
            return
        datas = [b["callback_data"] for row in under.inline_keyboard for b in row]
        update_id = user.press(under, datas[self.n % len(datas)])
        await world.settled()
        assert_answered(world, update_id)


@dataclass
class Tamper(Event):
    """A button Daka really offered, one field of its data changed (an id of the other
    organisation, a page or date out of range...), as a forging client would."""

    who: int
    n: int
    field: int
    value: int

    async def play(self, world: World) -> None:
        under = world.inline_message(self.who)
        if under is None:
            return
        datas = [b["callback_data"] for row in under.inline_keyboard for b in row]
        parts = datas[self.n % len(datas)].split(":")
        if len(parts) < 2:
            return
        k = 1 + self.field % (len(parts) - 1)
        numeric = parts[k].lstrip("-").isdigit()
        parts[k] = str(INTS[self.value % len(INTS)]) if numeric else WORDS[self.value % len(WORDS)]
        await Press(self.who, ":".join(parts)).play(world)


@dataclass
class CheckIn(Event):
    """A member's whole real check-in, found by what the buttons carry (any language)."""

    who: int
    temperature: str

    async def play(self, world: World) -> None:
        await Say(self.who, "/cancel").play(world)
        await Say(self.who, "/checkin").play(world)
        await Locate(self.who, 39.9087, 116.3975).play(world)
        await Say(self.who, self.temperature).play(world)
        for ending in (":none", ":__done", ":__no", ":__skip", ":confirm:"):
            under = world.inline_message(self.who)
            assert under is not None, "no buttons to go on with"
            [data] = [
                b["callback_data"]
                for row in under.inline_keyboard
                for b in row
                if b["callback_data"].endswith(ending)
            ]
            await Press(self.who, data).play(world)
        last = world.server.messages(self.who)[-1]
        assert last.text.startswith("✅"), last.text


@dataclass
class InGroup(Event):
    """A message or a press in a group: a person, an anonymous admin, or a bot."""

    chat: dict[str, Any]
    sender: str
    text: str
    press: bool = False

    async def play(self, world: World) -> None:
        since = len(world.server.calls)
        person = world.user(ZHANG if self.sender == "member" else SCHOOL_ADMIN)
        sender: Any = {"anonymous": ANONYMOUS_ADMIN, "bot": OTHER_BOT}.get(self.sender, person)
        if self.press:
            body = press_in(self.chat, person, self.text[:64] or "x")
            world.server.push_update({"callback_query": body})
        else:
            world.server.push_update({"message": message_in(self.chat, sender, self.text)})
        await world.settled()
        sent = [c for c in world.server.calls[since:] if c.chat_id == self.chat["id"]]
        word = self.text.split(maxsplit=1)[0] if self.text.strip() else ""
        name, _at, to = word[1:].partition("@")
        ours = word.startswith("/") and bool(name) and to in ("", "daka_test_bot")
        if self.press:  # answered to the presser alone, with the line
            [call] = sent
            assert call.method == "answerCallbackQuery" and call.params["text"] in LINES, call
            return
        expected = 1 if ours and self.sender != "bot" else 0
        assert len(sent) == expected, (self, [(c.method, c.params) for c in sent])
        for call in sent:
            assert call.method == "sendMessage" and call.params.get("text") in LINES, call


@dataclass
class Elsewhere(Event):
    """Kinds long polling never asks for (a webhook set up by hand might get them)."""

    kind: str
    text: str

    async def play(self, world: World) -> None:
        server, poller = world.server, world.daka.poller
        assert poller is not None
        zhang = world.user(ZHANG)
        body = {
            "channel_post": lambda: message_in(CHANNEL, None, self.text),
            "edited_channel_post": lambda: message_in(CHANNEL, None, self.text),
            "edited_message": lambda: message_in(zhang.chat_dict, zhang, self.text or "x"),
            "edited_group": lambda: message_in(SUPERGROUP, zhang, self.text or "x"),
            "my_chat_member": lambda: bot_added_to(GROUP, zhang),
            "bot_in_private": lambda: message_in(zhang.chat_dict, OTHER_BOT, self.text or "x"),
        }[self.kind]()
        kind = {"edited_group": "edited_message", "bot_in_private": "message"}.get(
            self.kind, self.kind
        )
        since = len(server.calls)
        await poller.handle([update(server, kind, body)])
        await world.settled()
        assert server.calls[since:] == [], [c.method for c in server.calls[since:]]


def assert_answered(world: World, update_id: int) -> None:
    query = world.server.updates[update_id - 1]["callback_query"]
    answers = [a for a in world.server.callback_answers if a.callback_query_id == query["id"]]
    assert answers, f"press {query['data']!r} by {query['from']['id']} got no answer"


def assert_nothing_outside_scope(world: World) -> None:
    for who in PEOPLE:
        typed = " ".join(world.typed.get(who, []))
        secrets = {s for s in OUTSIDE[who] if s not in typed}  # an echo is not a leak
        before = (
            {s for s in BEFORE_CHOOSING if s not in typed} if who == TWO_ORGS_MANAGER else set()
        )
        shown = [
            " ".join(str(c.params.get(k, "")) for k in ("text", "caption", "reply_markup"))
            for c in world.server.calls
            if c.chat_id == who and c.method in SHOWING
        ]
        chosen = next((i for i, text in enumerate(shown) if CHOSEN in text), len(shown))
        shown += [a.text or "" for a in world.server.callback_answers if a.chat_id == who]
        for i, text in enumerate(shown):
            leaked = sorted(s for s in secrets | (before if i < chosen else set()) if s in text)
            assert not leaked, f"{who} was shown {leaked}: {text[:300]!r}"


# -- strategies -----------------------------------------------------------------------------

junk = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
people = st.sampled_from(PEOPLE)


@st.composite
def commands(draw: st.DrawFn) -> str:
    command = draw(st.sampled_from(COMMANDS))
    arg = draw(st.one_of(st.sampled_from(ARGS), junk, st.integers().map(str)))
    return f"{command} {arg}".strip()


def callback_classes() -> list[type[CallbackData]]:
    """Every button factory of the routers, whichever module defines it."""
    for module in pkgutil.iter_modules(handlers.telegram.__path__):
        importlib.import_module(f"handlers.telegram.{module.name}")
    found: list[type[CallbackData]] = []
    todo = list(CallbackData.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("handlers."):
            found.append(cls)
    return sorted(found, key=lambda c: c.__prefix__)


def field_values(annotation: Any) -> st.SearchStrategy[str]:
    """Mostly values a handler might take for real (ids of either organisation, dates, the
    words buttons carry), else anything."""
    if annotation is bool or annotation == "bool":
        return st.sampled_from(["0", "1", "2", "", "yes"])
    if annotation is int or annotation == "int":
        return st.one_of(st.sampled_from(INTS), st.sampled_from(INTS), st.integers()).map(str)
    words = st.sampled_from(WORDS)
    return st.one_of(words, words, words, junk.map(lambda t: t.replace(":", "")))


@st.composite
def tampered(draw: st.DrawFn) -> str:
    """Callback data of one of the handlers' factories, with whatever values in its fields."""
    cls = draw(st.sampled_from(callback_classes()))
    parts = [cls.__prefix__]
    parts += [draw(field_values(f.annotation)) for f in cls.model_fields.values()]
    if draw(st.integers(0, 3)) == 0:
        parts = parts[: draw(st.integers(1, len(parts)))]  # fields missing
    data = cls.__separator__.join(parts)
    return data.encode()[:64].decode(errors="ignore")  # Telegram's limit on callback data


coordinates = st.tuples(
    st.one_of(st.floats(-90, 90), st.sampled_from([90.000001, -91.0, 1e9, -1e300])),
    st.one_of(st.floats(-180, 180), st.sampled_from([180.5, -181.0, 1e9, 1e300])),
)

indexes = st.integers(0, 40)
views = st.sampled_from(["/summary", "/missing", "/abnormal", "/export", "/where", "/trend"])
events = st.one_of(
    st.builds(Say, people, st.one_of(commands(), junk.filter(bool))),
    st.builds(
        lambda who, view, arg: Say(who, f"{view} {arg}".strip()),
        st.sampled_from(MANAGERS),
        views,
        st.sampled_from(ARGS),
    ),
    st.builds(Press, people, st.one_of(tampered(), junk)),
    st.builds(Press, st.sampled_from(MANAGERS), tampered()),
    st.builds(PressReal, st.sampled_from(MANAGERS), st.integers(0, 20)),
    st.builds(PressReal, st.sampled_from(MEMBERS), st.integers(0, 20)),
    st.builds(Tamper, people, indexes, indexes, indexes),
    st.builds(lambda who, ll: Locate(who, *ll), st.sampled_from(MEMBERS), coordinates),
    st.builds(CheckIn, st.sampled_from(MEMBERS), st.sampled_from(["36.5", "38.2"])),
    st.builds(
        InGroup,
        st.sampled_from(GROUPS),
        st.sampled_from(["member", "admin", "anonymous", "bot"]),
        st.one_of(commands(), junk, st.sampled_from(["/summary@some_other_bot", "/ x", "/@x"])),
        st.booleans(),
    ),
    st.builds(
        Elsewhere,
        st.sampled_from(
            [
                "channel_post",
                "edited_channel_post",
                "edited_message",
                "edited_group",
                "my_chat_member",
                "bot_in_private",
            ]
        ),
        st.one_of(commands(), junk),
    ),
)
# A manager's own browsing: a view, then presses of what it offers.
browsing = st.builds(
    lambda who, command, presses: [Say(who, command), *(p(who) for p in presses)],
    st.sampled_from(MANAGERS),
    st.sampled_from(["/summary", "/missing", "/abnormal"]),
    st.lists(
        st.one_of(
            st.builds(lambda n: lambda who: PressReal(who, n), indexes),
            st.builds(lambda n, f, v: lambda who: Tamper(who, n, f, v), indexes, indexes, indexes),
        ),
        max_size=3,
    ),
)
# The manager of both organisations: a view (the choice), a press of one organisation, the view
# again in it, then presses of what it offers.
choosing = st.builds(
    lambda command, n, presses: [
        Say(TWO_ORGS_MANAGER, command),
        PressReal(TWO_ORGS_MANAGER, n),
        Say(TWO_ORGS_MANAGER, command),
        *(PressReal(TWO_ORGS_MANAGER, p) for p in presses),
    ],
    st.sampled_from(["/summary", "/missing", "/abnormal"]),
    st.integers(0, 1),
    st.lists(indexes, max_size=2),
)
scenarios = st.lists(
    st.one_of(events.map(lambda e: [e]), browsing, choosing), min_size=6, max_size=14
).map(lambda chunks: [e for chunk in chunks for e in chunk])


# -- the world ------------------------------------------------------------------------------


class Failures(logging.Handler):
    """Every ERROR record and every record with a traceback, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


async def build_world(path: Path) -> None:
    """Two organisations; managers of a class, of two units in two colleges, of a whole school,
    of a whole village, and of a unit in each organisation; three enrolled members; the journal
    emptied, so that a new fake Telegram starts at 1."""
    async with (
        FakeBotAPI() as server,
        running_daka(server, FixedClock(MORNING), f"sqlite+aiosqlite:///{path}") as daka,
    ):
        for slug, roster in ROSTERS.items():
            await daka.org(slug, roster=roster, name=ORG_NAMES[slug])
        grants: list[tuple[int, str, str | None, str]] = [
            (SCHOOL_ADMIN, "school", None, "admin"),
            (VILLAGE_ADMIN, "village", None, "admin"),
        ]
        grants += [
            (who, slug, path_, "manager")
            for who, units in UNIT_GRANTS.items()
            for slug, paths in units.items()
            for path_ in paths
        ]
        for telegram_id, slug, path_, role in grants:
            await daka.grant(telegram_id, path_, role=role, slug=slug)
        world = World(daka, server)
        for telegram_id, external_id, name, slug in (
            (ZHANG, "2024001", "张三", "school"),
            (LI, "2024002", "李四", "school"),
            (ZHAO, "V001", "赵六六", "village"),
        ):
            user = world.user(telegram_id)
            await daka.enrol(user, external_id, name, await daka.invite(slug))
        await daka.settled()
        async with daka.sessions() as session:
            await session.exec(delete(InboundUpdate))
            await session.commit()


def fresh_copy(template: Path, workdir: Path) -> Path:
    database = workdir / "example.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
        if Path(f"{template}{suffix}").exists():
            shutil.copy(f"{template}{suffix}", f"{database}{suffix}")
    return database


async def play(database: Path, scenario: list[Event]) -> None:
    """One example on a fresh copy of the world: the scenario played, every check made."""
    failures = Failures()
    logging.getLogger().addHandler(failures)
    try:
        async with (
            FakeBotAPI() as server,
            running_daka(server, FixedClock(MORNING), f"sqlite+aiosqlite:///{database}") as daka,
        ):
            world = World(daka, server, failures=failures)
            for event in scenario:
                await event.play(world)
                world.assert_no_failure(event)
            assert_nothing_outside_scope(world)
            assert server.internal_errors == []
    finally:
        logging.getLogger().removeHandler(failures)
    assert not failures.records, [r.getMessage() for r in failures.records]


@pytest.fixture(scope="session")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz") / "world.db"
    asyncio.run(build_world(path))
    return path


@seed(int(SEED or 0))
@settings(
    max_examples=EXAMPLES,
    derandomize=SEED is None,  # the same examples on every run and machine
    database=None,
    deadline=None,  # a busy machine is slow, not wrong
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.generate],  # bounded: a failure is reported as found
)
@given(scenario=scenarios)
def test_no_update_fails_goes_unanswered_reaches_a_group_or_leaves_its_scope(
    fuzz_world: Path, tmp_path_factory: pytest.TempPathFactory, scenario: list[Event]
) -> None:
    asyncio.run(play(fresh_copy(fuzz_world, tmp_path_factory.getbasetemp()), scenario))


def test_every_kind_of_button_is_forged() -> None:
    prefixes = {cls.__prefix__ for cls in callback_classes()}
    expected = {"consent", "ans", "sum", "lang", "go", "nav", "lst", "nud", "wdr"}
    assert prefixes >= expected, prefixes
