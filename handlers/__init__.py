"""aiogram routers, assembled in the order they must see updates."""

from __future__ import annotations

from aiogram import Router


def build_router() -> Router:
    """One root router: enrolment first, then the check-in form, member commands, fallbacks."""
    from handlers import checkin, common, enrol, member

    root = Router(name="daka")
    root.include_routers(common.commands_router, enrol.router, checkin.router, member.router)
    root.include_router(common.fallback_router)
    return root
