"""The Telegram channel: each private message or press handed to the core as a Turn and a
neutral input (`conversation`), keyboards, middlewares, polling, replies, its courier for the
outbox and its one Bot API error policy (`errors`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiogram is imported by the modules, after bot/ set up its lazy models
    from aiogram import Router


def build_router() -> Router:
    """One root router: the conversation of private chats (the core routes it) and the error
    handler."""
    from aiogram import Router

    from handlers.telegram import common, conversation

    children = (common.router, conversation.router)
    for child in children:
        # aiogram lets a router be attached once; a restart in the same process (tests, a
        # supervisor) builds a new Dispatcher, so release the module routers first.
        child._parent_router = None
    root = Router(name="daka")
    root.include_routers(*children)
    return root
