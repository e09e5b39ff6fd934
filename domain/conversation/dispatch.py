"""Which part of the conversation core answers an input, in which conversation state: the one
routing of every channel. An adapter turns what arrived into a `Turn` and a neutral input and
calls `converse`; it routes nothing itself.

The routing is the Telegram bot's since its first release (it was aiogram routers and filters):

- a press goes by its key's prefix (`PRESSES`), to a handler that takes it in any state or in
  its own state only; any other press is stale;
- /cancel and an invite (`/start CODE`) are taken in any state (`ANYWHERE`);
- outside a conversation, a command goes to `COMMANDS` (a member's or anybody's) or, for a
  manager's command (`managers.COMMANDS`), behind the managers' gate: it runs only in the
  caller's resolved `Scope`; the member menu's labels typed back count as their commands;
- inside a conversation, whatever else is said goes to the state's handler (`IN_STATE`);
- what is left gets "I don't know that command" or the way in (`common`).

A new command is one line: in `COMMANDS` (anybody's: `"name": with_turn(module.on_name)`), or
in `managers.COMMANDS` (a manager's: `"name": module.on_name`, which takes the scope)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from domain.conversation import admin, checkin, common, enrolment, managers, member, privacy
from domain.conversation.common import LanguageKey
from domain.conversation.drafts import ANSWERING, SUMMARY, AnswerKey, StartCheckInKey, SummaryKey
from domain.conversation.enrolment import CONSENT, MEMBER_ID, NAME, ConsentKey
from domain.conversation.io import Command, Document, Input, Press, Text
from domain.conversation.keys import SEPARATOR
from domain.conversation.manager_keys import MANAGER_KEYS
from domain.conversation.turn import Turn

Resolve = checkin.Resolve
Fetch = Callable[[str], Awaitable[bytes]]  # the bytes of a document or photo, by its reference


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What answering needs beyond the Turn, the same for every turn of a channel."""

    resolve: Resolve  # the place name of coordinates (domain.geo.resolve_place)
    # The channel's download of a file or photo sent (a roster, a photo answer), by its
    # reference; raises LookupError when the channel cannot give it (a WeCom MediaId expired).
    fetch: Fetch
    wake: Callable[[], None] | None = None  # wakes the outbox sender when alerts were queued
    recorded: Callable[[], None] | None = None  # a check-in was stored (counted once committed)
    # An invite made the person a manager or an administrator ("manager", "admin"): the
    # channel may offer the role's commands at once (Telegram: the command menu).
    granted: Callable[[Turn, str], Awaitable[None]] | None = None


Handler = Callable[[Turn, Command, Services], Awaitable[None]]
Reply = Callable[[Turn, Input, Services], Awaitable[None]]
Pressed = Callable[[Turn, Press, Services], Awaitable[None]]


def with_turn(answer: Callable[[Turn], Awaitable[None]]) -> Handler:
    """A command whose answer needs only the Turn."""

    async def handler(turn: Turn, command: Command, services: Services) -> None:
        await answer(turn)

    return handler


async def start(turn: Turn, command: Command, services: Services) -> None:
    """/start CODE (an invite link) in any state; /start alone outside a conversation."""
    if command.args:
        await enrolment.on_invite(turn, command.args)
    else:
        await enrolment.on_start(turn)


async def start_checkin(turn: Turn, command: Command, services: Services) -> None:
    await checkin.on_start(turn, command, resolve=services.resolve)


# Commands outside a conversation (a manager's are `managers.COMMANDS`).
COMMANDS: dict[str, Handler] = {
    "start": start,
    "help": with_turn(common.on_help),
    "language": with_turn(common.on_language),
    "checkin": start_checkin,
    "today": with_turn(member.on_today),
    "history": with_turn(member.on_history),
    "mydata": with_turn(member.on_mydata),
    "withdraw": with_turn(privacy.on_withdraw),
}

# Commands taken in any state, before the conversation under way sees them.
ANYWHERE: dict[str, Handler] = {
    "cancel": with_turn(common.on_cancel),
}


async def manager_command(turn: Turn, command: Command, services: Services) -> None:
    """Behind the managers' gate: run in the caller's scope, or refused (or the choice of
    organisation) without one."""
    await managers.on_command(turn, managers.scope_of(turn.visitor), command)


def command_handler(command: Command, state: str | None) -> Handler | None:
    """Who takes `command` in `state`; None: nobody, the conversation or a fallback answers."""
    handler = ANYWHERE.get(command.name)
    if handler is not None:
        return handler
    if command.name == "start" and command.args:
        return start
    if state is not None:
        return None
    handler = COMMANDS.get(command.name)
    if handler is None and command.name in managers.COMMANDS:
        return manager_command
    return handler


async def consent_pending(turn: Turn, given: Input, services: Services) -> None:
    await enrolment.on_consent_pending(turn)


def typed(given: Input) -> Text | None:
    """Text to take as an answer: typed, not a command, not empty (a sticker)."""
    return given if isinstance(given, Text) and given.text else None


async def member_id(turn: Turn, given: Input, services: Services) -> None:
    text = typed(given)
    if text is None:
        await enrolment.on_enrol_other(turn)
    else:
        await enrolment.on_member_id(turn, text)


async def name(turn: Turn, given: Input, services: Services) -> None:
    text = typed(given)
    if text is None:
        await enrolment.on_enrol_other(turn)
    else:
        await enrolment.on_name(turn, text)


async def answer(turn: Turn, given: Input, services: Services) -> None:
    await checkin.on_answer(turn, given, resolve=services.resolve, fetch=services.fetch)


async def at_summary(turn: Turn, given: Input, services: Services) -> None:
    await checkin.on_summary(
        turn, given, resolve=services.resolve, wake=services.wake, recorded=services.recorded
    )


async def roster_sent(turn: Turn, given: Input, services: Services) -> None:
    """Behind the managers' gate, as the /roster that began it."""
    scope = managers.scope_of(turn.visitor)
    if scope is None:
        await managers.without_scope(turn, pressed=False)
    elif isinstance(given, Document):

        async def fetch(document: Document) -> bytes:
            return await services.fetch(document.ref)

        await admin.on_roster_file(turn, scope, given, fetch)
    else:
        await admin.on_roster_other(turn)


# What is said in a conversation state (after `ANYWHERE`); a state not here gets the fallbacks.
IN_STATE: dict[str, Reply] = {
    CONSENT: consent_pending,
    MEMBER_ID: member_id,
    NAME: name,
    ANSWERING: answer,
    SUMMARY: at_summary,
    admin.ROSTER_WAITING: roster_sent,
}


async def language_chosen(turn: Turn, press: Press, services: Services) -> None:
    await common.on_language_chosen(turn, press.key)


async def consent(turn: Turn, press: Press, services: Services) -> None:
    role = await enrolment.on_consent(turn, press.key)
    if role is not None and services.granted is not None:
        await services.granted(turn, role)


async def checkin_pressed(turn: Turn, press: Press, services: Services) -> None:
    await checkin.on_start(turn, press, resolve=services.resolve)


async def answer_pressed(turn: Turn, press: Press, services: Services) -> None:
    await answer(turn, press, services)


async def summary_pressed(turn: Turn, press: Press, services: Services) -> None:
    await at_summary(turn, press, services)


async def withdraw_pressed(turn: Turn, press: Press, services: Services) -> None:
    await privacy.on_withdraw_press(turn, press.key)


async def manager_pressed(turn: Turn, press: Press, services: Services) -> None:
    """Behind the managers' gate (the choice of organisation needs no scope)."""
    await managers.on_press(turn, managers.scope_of(turn.visitor), press)


@dataclass(frozen=True, slots=True)
class Route:
    """Who takes a press, and in which states (None: any). A key with fields is its prefix, a
    separator and the fields; one without (`bare`) is its prefix alone."""

    pressed: Pressed
    states: Collection[str | None] | None = None
    bare: bool = False

    def takes(self, key: str, state: str | None) -> bool:
        bare = SEPARATOR not in key
        return bare == self.bare and (self.states is None or state in self.states)


# Presses by their key's prefix; each handler unpacks the key and answers one that does not.
PRESSES: dict[str, Route] = {
    LanguageKey.prefix: Route(language_chosen),
    ConsentKey.prefix: Route(consent, {CONSENT}),
    StartCheckInKey.prefix: Route(checkin_pressed, {None}, bare=True),
    AnswerKey.prefix: Route(answer_pressed, {ANSWERING}),
    SummaryKey.prefix: Route(summary_pressed, {SUMMARY}),
    privacy.WithdrawKey.prefix: Route(withdraw_pressed, {None}),  # outside a conversation
    **{key.prefix: Route(manager_pressed) for key in MANAGER_KEYS},
}


async def outside(turn: Turn, given: Input, services: Services) -> None:
    """Not a command anybody takes, outside a conversation: a menu entry's label, or the
    fallbacks."""
    if isinstance(given, Text):
        command = common.menu_command(given.text)
        if command is not None:
            await COMMANDS[command](turn, Command(command), services)
            return
    await fallback(turn, given, services)


async def fallback(turn: Turn, given: Input, services: Services) -> None:
    if isinstance(given, Command):
        await common.on_unknown_command(turn)
    else:
        await common.on_anything_else(turn)


async def converse(turn: Turn, given: Input, services: Services) -> None:
    """Answer one input of `turn`'s person, routed by their conversation state."""
    state = await turn.state.get_state()
    if isinstance(given, Press):
        route = PRESSES.get(given.key.partition(SEPARATOR)[0])
        if route is None or not route.takes(given.key, state):
            await common.on_stale_press(turn)
        else:
            await route.pressed(turn, given, services)
        return
    if isinstance(given, Command):
        handler = command_handler(given, state)
        if handler is not None:
            await handler(turn, given, services)
            return
        if given.attached is not None:
            given = given.attached
    if state is None:
        await outside(turn, given, services)
    else:
        await IN_STATE.get(state, fallback)(turn, given, services)
