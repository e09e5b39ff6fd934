"""Synchronous filters run inline (bot/shims/inline_filters.py), or in aiogram's worker thread when
the shim steps aside: routing is the same either way."""

from __future__ import annotations

import pytest

from tests.child import PRETEND_RELEASES, run_python

ROUTE = """
import asyncio
from bot.shims.inline_filters import inline_sync_filters  # first, as in the bot: bot/__init__.py
from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Message, Update

router = Router()

@router.message(F.location)
async def on_location(message: Message) -> str:
    return "location"

@router.message(F.text == "hi")
async def on_hi(message: Message) -> str:
    return "hi"

dp = Dispatcher()
dp.include_router(router)
inlined = inline_sync_filters(dp)
bot = Bot("42:TEST")

async def route(**content: object) -> object:
    message = {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}, **content}
    return await dp.feed_update(bot, Update.model_validate({"update_id": 1, "message": message}))

async def main() -> None:
    location = {"latitude": 39.9, "longitude": 116.4}
    print(inlined, await route(text="hi"), await route(location=location))
    await bot.session.close()

asyncio.run(main())
"""


def test_filters_run_inline_on_the_locked_release() -> None:
    done = run_python(ROUTE)
    count, *routed = done.stdout.split()
    assert int(count) >= 2 and routed == ["hi", "location"]
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("prelude", "env", "reason"),
    [
        ("", {"RELEASES": "aiogram=3.32.0"}, "aiogram 3.32.0 is not the 3.31.x"),
        (
            """
            from aiogram.dispatcher.event.handler import FilterObject
            del FilterObject.__dataclass_fields__["awaitable"]  # as if aiogram renamed it
            """,
            {},
            "aiogram.dispatcher.event.handler:FilterObject.awaitable is missing",
        ),
    ],
)
def test_when_the_shim_steps_aside_filters_still_route(
    prelude: str, env: dict[str, str], reason: str
) -> None:
    done = run_python(PRETEND_RELEASES, prelude, ROUTE, **env)
    assert done.stdout.split() == ["0", "hi", "location"]
    assert reason in done.stderr
