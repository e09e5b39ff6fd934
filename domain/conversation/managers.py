"""The managers' side of the conversation: whose scope a command or button runs in, what someone
without one is told, the choice of organisation for managers of several, and the entry points a
channel calls (`on_command`, `on_press`) that run each view only with a resolved `Scope`.

Every channel reaches them through the core's routing (`domain.conversation.dispatch`), which
calls `on_command` / `on_press` with `scope_of` the caller, and `without_scope` for a managers'
conversation (a roster awaited) of someone who no longer has one."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from domain.conversation import admin, exports, lists, schedule, summary
from domain.conversation.io import Command, Option, Press
from domain.conversation.keys import BadKey, Key
from domain.conversation.manager_keys import (
    MANAGER_KEYS,
    ListKey,
    NavKey,
    NudgeKey,
    OrgKey,
    PhotoKey,
    ScheduleKey,
    stale,
)
from domain.conversation.turn import Turn, Visitor
from domain.i18n import _
from storage.models import Organisation
from storage.scope import Scope, manager_orgs, resolve_scope

View = Callable[[Turn, Scope, Command], Awaitable[None]]


async def on_missing(turn: Turn, scope: Scope, command: Command) -> None:
    await lists.on_list(turn, scope, command, "missing")


async def on_abnormal(turn: Turn, scope: Scope, command: Command) -> None:
    await lists.on_list(turn, scope, command, "abnormal")


COMMANDS: dict[str, View] = {
    "summary": summary.on_summary,
    "missing": on_missing,
    "abnormal": on_abnormal,
    "member": lists.on_member,
    "where": lists.on_where,
    "export": exports.on_export,
    "trend": exports.on_trend,
    "schedule": schedule.on_schedule,
    "excuse": admin.on_excuse,
    "roster": admin.on_roster,
}

# The states of the managers' own conversations: the only ones cleared when someone is refused.
# Any other state is another conversation's (a member's check-in in progress), which a refused
# button press must leave as it is.
MANAGERS_STATES = frozenset({admin.ROSTER_WAITING})


def scope_of(visitor: Visitor) -> Scope | None:
    """The caller's scope for this turn: their manager and admin grants in their only
    organisation, or in the one they chose; None: none, or no choice made yet."""
    account = visitor.account
    return resolve_scope(
        visitor.roles, visitor.orgs, account.org_id if account is not None else None
    )


def refusal() -> str:
    return _("This command is for counselors, cadres and administrators.")


def org_choice(orgs: list[Organisation]) -> tuple[str, list[list[Option]]]:
    options = [[Option(f"🏫 {o.name}", key=OrgKey(org=o.id or 0).pack())] for o in orgs]
    return _("You manage several organisations. Which one do you want to work in?"), options


async def without_scope(turn: Turn, *, pressed: bool) -> None:
    """A manager's command or button from someone with no scope now: managers of several
    organisations get the choice, anybody else the refusal (a button: "no longer valid").
    A managers' conversation they were in (a roster upload begun before a role was revoked)
    ends here."""
    if await turn.state.get_state() in MANAGERS_STATES:
        await turn.state.clear()
    orgs = manager_orgs(turn.visitor.roles, turn.visitor.orgs)
    if len(orgs) > 1:
        if pressed:
            await turn.out.notice()
        text, options = org_choice(orgs)
        await turn.out.say(text, options)
    elif pressed:
        await stale(turn)
    else:
        await turn.out.say(refusal())


async def on_org(turn: Turn, key: OrgKey) -> None:
    """Choose the organisation to work in (0: offer the choice again); only one the presser
    manages, checked here, for the key is theirs to forge."""
    visitor = turn.visitor
    orgs = manager_orgs(visitor.roles, visitor.orgs)
    if len(orgs) < 2:
        await stale(turn)
        return
    if key.org == 0:
        await turn.out.notice()
        text, options = org_choice(orgs)
        await turn.out.say(text, options)
        return
    chosen = next((o for o in orgs if o.id == key.org), None)
    if chosen is None:
        await stale(turn)
        return
    account = await visitor.ensure_account(turn.repo, turn.clock.now())
    account.org_id = chosen.id
    await turn.repo.session.flush()
    await turn.out.notice()
    await turn.out.replace(
        _("You now work in {org}. Send your command again.").format(org=html.escape(chosen.name))
    )


async def on_command(turn: Turn, scope: Scope | None, command: Command) -> bool:
    """A manager's command, run in `scope` (None: `without_scope`); False when `command` is
    none of theirs."""
    view = COMMANDS.get(command.name)
    if view is None:
        return False
    if scope is None:
        await without_scope(turn, pressed=False)
    else:
        await view(turn, scope, command)
    return True


def manager_key(press: Press) -> Key | None:
    """The managers' key pressed, None when the key is none of theirs; `BadKey` when it has
    their prefix and does not unpack."""
    for cls in MANAGER_KEYS:
        if cls.matches(press.key):
            return cls.unpack(press.key)
    return None


async def on_press(turn: Turn, scope: Scope | None, press: Press) -> bool:
    """A managers' button, run in `scope` (None: `without_scope`; the choice of organisation
    needs none); False when the key is none of theirs."""
    try:
        key = manager_key(press)
    except BadKey:
        await stale(turn)
        return True
    if key is None:
        return False
    if isinstance(key, OrgKey):
        await on_org(turn, key)
    elif scope is None:
        await without_scope(turn, pressed=True)
    elif isinstance(key, NavKey):
        await summary.on_navigate(turn, scope, key)
    elif isinstance(key, ListKey):
        await lists.on_list_page(turn, scope, key)
    elif isinstance(key, NudgeKey):
        await lists.on_nudge(turn, scope, key)
    elif isinstance(key, ScheduleKey):
        await schedule.on_schedule_unit(turn, scope, key)
    elif isinstance(key, PhotoKey):
        await lists.on_photo(turn, scope, key)
    return True
