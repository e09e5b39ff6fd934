"""One WeCom event as a turn of the conversation core: who wrote (`Person`, `Visitor`), their
conversation state, a `WeComOut`, and the neutral input, handed to the injected `converse`.

What is WeCom's own is read here, before the core sees it:
- "绑定 CODE", "bind CODE" or an invite link's `start=CODE` is the invite (as Telegram's
  `/start CODE`), refused when it is another organisation's than the app's;
- a number typed back is the press of that option of the message last shown (`out.Shown`);
  numbers typed together ("1 3", "1，3") after a choose-several question's boxes (numbered, or
  on a vote card the WeChat plug-in does not show) submit those boxes, as the card would;
- the device's own location report (上报地理位置) counts only while a location is asked for;
- the 打卡 menu button's pick (`location_select`) starts today's check-in when none is under way
  and answers its location question;
- someone unknown who writes anything but a command: bound on the spot, after consent, where the
  organisation's WeCom user ids are its member ids (`domain.conversation.direct`), otherwise
  told how to enrol with a code."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.clock import Clock
from domain.conversation import direct
from domain.conversation.io import Command, Input, Person, Press, State, Text
from domain.conversation.turn import Turn, Visitor, load_visitors
from domain.i18n import (
    DEFAULT_LANGUAGE,
    LOCALE_OF,
    Translator,
    _,
    choose_language,
    create_translator,
)
from handlers.wecom.api import Download, WeComAPI
from handlers.wecom.menu import CHECKIN_KEY, typed_commands
from handlers.wecom.messages import (
    CHANNEL,
    CardPressed,
    Event,
    LocationPicked,
    LocationReport,
    person_of,
    to_input,
)
from handlers.wecom.out import Click, Shown, WeComOut
from handlers.wecom.replies import Record, text
from storage.conversation_state import StoredState, flush_later, flush_steps, read_steps
from storage.repo import Repo, Served
from storage.repos.accounts import erasures_seen

Converse = Callable[[Turn, Input], Awaitable[None]]
StateOf = Callable[[AsyncSession, Person], State]  # the person's state in the turn's session
Fetch = Callable[[str], Awaitable[bytes]]

BIND: Final = re.compile(r"(?:绑定|bind)\s*:?\s*(\S*)", re.IGNORECASE)
LINK: Final = re.compile(r"[?&]start=([A-Za-z0-9_-]{1,64})")
NUMBER: Final = re.compile(r"[0-9]{1,3}")
NUMBERS: Final = re.compile(r"[0-9]{1,3}(?:[\s,、;/]+[0-9]{1,3}){0,31}")  # after NFKC


def bind_hint() -> str:
    return _(
        "Hello! I am the daily check-in assistant. To enrol, send 绑定 and the invite code you "
        "were given, for example: 绑定 AbCdEf0123456789"
    )


def read_text(given: Text, shown: Shown | None) -> Input | None:
    """A typed text as WeCom members mean it: an invite, a number for an option shown as a
    numbered line, numbers for the boxes of a choose-several question, or text. None: "绑定"
    without a code."""
    raw = unicodedata.normalize("NFKC", given.text).strip()
    bind = BIND.fullmatch(raw)
    if bind is not None:
        return Command("start", bind.group(1)) if bind.group(1) else None
    link = LINK.search(raw)
    if link is not None and " " not in raw:
        return Command("start", link.group(1))
    one = NUMBER.fullmatch(raw) is not None
    # Numbers for boxes submit them; one number after numbered boxes ticks it (below).
    if (
        NUMBERS.fullmatch(raw)
        and shown is not None
        and shown.submit
        and not (one and shown.numbered)
    ):
        boxes = shown.boxes_of([int(n) for n in re.findall(r"[0-9]+", raw)])
        return Press(shown.submit, chosen=boxes) if boxes is not None else given
    if one and shown is not None and shown.numbered:
        key = shown.key_of(int(raw))
        if key is not None:
            return Press(key)
    return given


LANGUAGES_KEPT = 100_000


_PREPARED: Final = "daka_wecom_prepared"  # session.info: that transaction's `_Prepared`


@dataclass(slots=True)
class _Prepared:
    """What `WeComTurns.prepare` read for the turns in one transaction: each
    visitor and conversation state is taken by their turn, once. Kept in the transaction's
    session (`_PREPARED`), not on the app's `WeComTurns`: several workers' batches can be
    under way at once (one prepares while another's turns run), and each `finish` must find
    its own batch's steps and erasure counts."""

    served: Served | None
    visitors: dict[str, Visitor]
    states: dict[str, State]
    # The erasures of the turns' accounts as each turn read them: checked once, by `finish`.
    seen: dict[int, int] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # whose turns ran


@dataclass
class WeComTurns:
    """The turns of one app's events (`handlers.wecom.inbox.Turns`)."""

    converse: Converse
    state_of: StateOf
    clock: Clock
    agent_id: int
    channels: frozenset[str] = frozenset()  # the deployment's, where its letters go
    i18n: Translator = field(default_factory=create_translator)
    words: dict[str, str] = field(init=False)  # "打卡", "今日"... typed instead of tapped
    # Each member's language, as their last turn found it (for an apology when a turn fails;
    # turns of several members run at once). Bounded: forgotten past LANGUAGES_KEPT members.
    _languages: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.words = typed_commands(self.i18n)

    async def prepare(self, repo: Repo, events: Sequence[Event]) -> None:
        """Before the turns of `events` in `repo`'s transaction: who the app serves and who
        the senders are, read once for all of them (as a batch of Telegram's updates is)."""
        served = await repo.channels.serving(channel=CHANNEL, app_id=str(self.agent_id))
        people = {person.external_id: person for person in map(person_of, events)}
        visitors = await load_visitors(repo, channel=CHANNEL, external_ids=list(people))
        states = {eid: self.state_of(repo.session, person) for eid, person in people.items()}
        stored = [state for state in states.values() if isinstance(state, StoredState)]
        await read_steps(repo.session, stored)
        repo.session.info[_PREPARED] = _Prepared(served, visitors, states)

    async def answer(self, repo: Repo, event: Event) -> list[Record]:
        person = person_of(event)
        prepared: _Prepared | None = repo.session.info.get(_PREPARED)
        visitor, state = None, None
        if prepared is not None:
            if person.external_id in prepared.answered:
                await flush_steps(repo.session)  # their turn before wrote its step first
            prepared.answered.add(person.external_id)
            served = prepared.served
            visitor = prepared.visitors.pop(person.external_id, None)
            state = prepared.states.pop(person.external_id, None)
        else:
            served = await repo.channels.serving(channel=CHANNEL, app_id=str(self.agent_id))
        if visitor is None:
            visitors = await load_visitors(
                repo, channel=CHANNEL, external_ids=[person.external_id]
            )
            visitor = visitors[person.external_id]
        seen = erasures_seen([visitor.account])
        prefer_served(visitor, served)
        if state is None:
            state = self.state_of(repo.session, person)
        shown = Shown.of(await state.get_data())
        click = None
        if isinstance(event, CardPressed):
            click = Click(event.task_id, event.event_key, event.response_code)
        text_only = served is not None and served.setting.text_only
        out = WeComOut(text_only=text_only, shown=shown, click=click)
        turn = Turn(person, visitor, repo, self.clock, state, out, channels=self.channels)
        language = self.language_of(visitor, served)
        with self.i18n.context(), self.i18n.use_locale(LOCALE_OF[language]):
            await self._converse(turn, out, event, served, shown)
            out.finish()
            await out.remember(state)
        if not isinstance(state, StoredState):
            pass
        elif prepared is not None:
            flush_later(state)  # its last step, with the other turns' by `finish`
        else:
            await state.flush()  # its last step, once
        if prepared is not None:
            prepared.seen.update(seen)  # checked by `finish`, just before the commit
        else:
            await repo.accounts.check_unerased(seen=seen)  # raises: the inbox runs it again
        return out.records

    async def finish(self, repo: Repo) -> None:
        """After the turns prepared in `repo`'s transaction, before its commit: raises
        `ErasedMeanwhile` when the account of one of them was erased since its turn read it
        (one statement for all of them; the inbox then runs them again, each on its own)."""
        prepared: _Prepared | None = repo.session.info.pop(_PREPARED, None)
        await flush_steps(repo.session)  # the turns' last steps, together
        if prepared is not None:
            await repo.accounts.check_unerased(seen=prepared.seen)

    def apology(self, event: Event) -> list[Record]:
        language = self._languages.get(person_of(event).external_id, DEFAULT_LANGUAGE)
        with self.i18n.context(), self.i18n.use_locale(LOCALE_OF[language]):
            return [
                text(_("Sorry, something went wrong on our side. Please try again in a moment."))
            ]

    def language_of(self, visitor: Visitor, served: Served | None) -> str:
        """The member's choice, else their organisation's (the app's, for someone new)."""
        account = visitor.account
        language = choose_language(
            account.language if account is not None else None,
            served.org.language if served is not None else None,  # WeCom gives no hint
            visitor.org_language,
        )
        if len(self._languages) >= LANGUAGES_KEPT:
            self._languages.clear()
        self._languages[visitor.external_id] = language
        return language

    async def _converse(
        self, turn: Turn, out: WeComOut, event: Event, served: Served | None, shown: Shown | None
    ) -> None:
        given = to_input(event)
        if isinstance(event, LocationReport) and (shown is None or not shown.location):
            return  # the device reports on entering the app: only an answer when asked for
        if isinstance(given, Text):
            given = read_text(given, shown)
            if given is None:
                await turn.out.say(bind_hint())
                return
        if isinstance(given, Command) and given.name == "bind":
            given = Command("start", given.args)
        if given is None:
            return
        if (
            isinstance(given, Command)
            and given.name == "start"
            and given.args
            and not await self._invite_here(turn, given.args, served)
        ):
            return
        visitor = turn.visitor
        state = await turn.state.get_state()
        if isinstance(given, Text) and state is None:
            word = unicodedata.normalize("NFKC", given.text).strip().casefold()
            command = self.words.get(word)
            given = Command(command) if command is not None else given
        stranger = state is None and not (visitor.members or visitor.roles)
        if stranger and not isinstance(given, Command | Press):
            if served is not None and served.setting.ids_are_member_ids:
                await direct.offer_direct(turn, served.org)
            else:
                await turn.out.say(bind_hint())
            return
        if (
            isinstance(event, LocationPicked)
            and event.event_key == CHECKIN_KEY
            and state is None
            and visitor.member is not None
        ):
            await self.converse(turn, Command("checkin"))
            if not out.asked_location:
                return  # the check-in does not begin with a location: the pick is not asked for
        await self.converse(turn, given)

    async def _invite_here(self, turn: Turn, code: str, served: Served | None) -> bool:
        """An invite of another organisation than the app serves is refused: one app serves
        one organisation (and an app that serves none, e.g. taken off its organisation while
        running, takes no invite)."""
        if served is None:
            await turn.out.say(
                _(
                    "This app does not serve any organisation at the moment: "
                    "please ask your manager."
                )
            )
            return False
        invite = await turn.repo.invites.get(code=code.strip())
        if invite is None or invite.org_id == served.org.id:
            return True
        await turn.out.say(
            _(
                "This invite is for another organisation, which this app does not serve. "
                "Please enrol through that organisation's own app or link."
            )
        )
        return False


def prefer_served(visitor: Visitor, served: Served | None) -> None:
    """Someone in several organisations of the corporation, each served by an app of its own,
    is in the app they wrote to the member (and manager) of the organisation it serves: its
    enrolment and roles come first, and its language."""
    if served is None or served.org.id is None or served.org.id not in visitor.orgs:
        return
    org_id = served.org.id
    visitor.members.sort(key=lambda member: member.org_id != org_id)
    visitor.roles.sort(key=lambda grant: grant.org_id != org_id)
    visitor.org = served.org


def media_fetcher(api: WeComAPI) -> Fetch:
    """The core's `fetch(ref)` for WeCom: a member's photo or file by its MediaId
    (media/get; WeCom keeps it 3 days)."""

    async def fetch(ref: str) -> bytes:
        got = await api.download(ref)
        if not isinstance(got, Download):
            raise LookupError(f"WeCom media {ref[:12]}… could not be fetched: {got}")
        return got.data

    return fetch
