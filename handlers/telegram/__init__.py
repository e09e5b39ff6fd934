"""The Telegram channel: aiogram routers (assembled here in the order they must see updates),
keyboards, middlewares, polling, replies, its courier for the outbox and its one Bot API error
policy (`errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiogram is imported by the modules, after bot/ set up its lazy models
    from aiogram import Router


def build_router() -> Router:
    """One root router: enrolment first, then the check-in form, member commands, the managers'
    (each behind the gate of handlers.telegram.gate), fallbacks."""
    from aiogram import Router

    from handlers.telegram import admin, checkin, common, enrol, gate, manage, member, trend, views

    children = (
        common.commands_router,
        enrol.router,
        checkin.router,
        member.router,
        manage.router,
        views.router,
        trend.router,
        admin.router,
        gate.router,  # after the managers' routers: their buttons that did not unpack
        common.fallback_router,
    )
    for child in children:
        # aiogram lets a router be attached once; a restart in the same process (tests, a
        # supervisor) builds a new Dispatcher, so release the module routers first.
        child._parent_router = None
    root = Router(name="daka")
    root.include_routers(*children)
    return root
