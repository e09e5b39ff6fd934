"""The managers' gate: every handler of a managers' router runs with the caller's resolved
`Scope` or not at all. A router made by `managers_router` cannot forget it; a new view declares
`scope: Scope` and asks the scope about every id it is given."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
)

from domain.clock import Clock
from domain.conversation.turn import Visitor
from domain.i18n import _
from handlers.telegram.keyboards import MANAGER_CALLBACKS, OrgCb
from storage.models import Organisation
from storage.repo import Repo
from storage.scope import Scope, manager_orgs

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

router = Router(name="gate")  # the choice of organisation, and managers' buttons gone bad


def no_longer_valid() -> str:
    return _("This button is no longer valid.")


async def stale(query: CallbackQuery) -> None:
    """The one answer to a button whose data is tampered with, stale or not the presser's:
    nothing about why (another organisation, another unit, no such row, a far day)."""
    await query.answer(no_longer_valid(), show_alert=True)


async def refuse(message: Message) -> None:
    await message.answer(_("This command is for counselors, cadres and administrators."))


def org_choice(orgs: list[Organisation]) -> tuple[str, InlineKeyboardMarkup]:
    rows = [
        [InlineKeyboardButton(text=f"🏫 {o.name}", callback_data=OrgCb(org=o.id or 0).pack())]
        for o in orgs
    ]
    return (
        _("You manage several organisations. Which one do you want to work in?"),
        InlineKeyboardMarkup(inline_keyboard=rows),
    )


class ManagersConversation(StatesGroup):
    """The base of every conversation of the managers' routers (a roster upload): the only
    states the gate clears when it refuses someone. Any other state is another conversation's
    (a member's check-in in progress), which a refused button press must leave as it is."""


def managers_state(raw_state: str | None) -> bool:
    """Whether a stored FSM state belongs to a managers' conversation."""
    return raw_state is not None and any(
        raw_state in group.__all_states_names__ for group in ManagersConversation.__subclasses__()
    )


class ManagersGate(BaseMiddleware):
    """Inner middleware of the managers' routers: it runs once a handler's filters matched, and
    calls the handler only with a resolved scope. Members get the refusal (a button: "no longer
    valid"); managers of several organisations who have not chosen one get the choice."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(data.get("scope"), Scope):
            return await handler(event, data)
        visitor: Visitor | None = data.get("visitor")
        orgs = manager_orgs(visitor.roles, visitor.orgs) if visitor is not None else []
        state: FSMContext | None = data.get("state")
        if state is not None and managers_state(await state.get_state()):
            await state.clear()  # a roster upload begun before a role was revoked
        if isinstance(event, CallbackQuery):
            if len(orgs) > 1:
                await event.answer()
                if isinstance(event.message, Message):
                    text, markup = org_choice(orgs)
                    await event.message.answer(text, reply_markup=markup)
            else:
                await stale(event)
        elif isinstance(event, Message):
            if len(orgs) > 1:
                text, markup = org_choice(orgs)
                await event.answer(text, reply_markup=markup)
            else:
                await refuse(event)
        return None


def managers_router(name: str) -> Router:
    """A router whose every message and button handler is behind `ManagersGate`."""
    gated = Router(name=name)
    gate = ManagersGate()
    gated.message.middleware(gate)
    gated.callback_query.middleware(gate)
    return gated


def is_gated(candidate: Router) -> bool:
    return any(isinstance(m, ManagersGate) for m in candidate.message.middleware) and any(
        isinstance(m, ManagersGate) for m in candidate.callback_query.middleware
    )


@router.callback_query(OrgCb.filter())
async def on_org_chosen(
    query: CallbackQuery,
    callback_data: OrgCb,
    repo: Repo,
    clock: Clock,
    visitor: Visitor | None = None,
) -> None:
    """Choose the organisation to work in (0: offer the choice again); only one the presser
    manages, checked here, for the button's data is theirs to forge."""
    orgs = manager_orgs(visitor.roles, visitor.orgs) if visitor is not None else []
    if visitor is None or len(orgs) < 2:
        await stale(query)
        return
    if callback_data.org == 0:
        await query.answer()
        if isinstance(query.message, Message):
            text, markup = org_choice(orgs)
            await query.message.answer(text, reply_markup=markup)
        return
    chosen = next((o for o in orgs if o.id == callback_data.org), None)
    if chosen is None:
        await stale(query)
        return
    account = await visitor.ensure_account(repo, clock.now())
    account.org_id = chosen.id
    await repo.session.flush()
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.edit_text(
            _("You now work in {org}. Send your command again.").format(
                org=html.escape(chosen.name)
            )
        )


@router.callback_query(F.data.startswith(tuple(f"{cb.__prefix__}:" for cb in MANAGER_CALLBACKS)))
async def on_bad_manager_button(query: CallbackQuery) -> None:
    """A managers' button whose data does not unpack: out of bounds, or not of this bot."""
    await stale(query)
