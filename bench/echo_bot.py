"""A bare aiogram 3 echo bot: the baseline the check-in bot is measured against.

Run as ``python -m bench.echo_bot`` with BOT_TOKEN and TELEGRAM_API_URL set; it builds its
`Bot` exactly like `bot.app.create_bot` (aiohttp session, HTML parse mode) and long-polls with
aiogram's own `Dispatcher.start_polling`, which stops cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import os
import sys

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import Message

from bot.loop import chosen
from bot.loop import run as run_loop

router = Router(name="echo")


@router.message()
async def echo(message: Message) -> None:
    await message.answer(message.text or "ok")


def create_bot(token: str, api_url: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


async def run(token: str, api_url: str) -> None:
    bot = create_bot(token, api_url)
    dp = Dispatcher()
    dp.include_router(router)
    try:
        await dp.start_polling(bot, allowed_updates=["message", "callback_query"])
    finally:
        await bot.session.close()


def main() -> int:
    token = os.environ.get("BOT_TOKEN", "").strip()
    api_url = os.environ.get("TELEGRAM_API_URL", "").strip().rstrip("/")
    if not token or not api_url:
        print("echo_bot: BOT_TOKEN and TELEGRAM_API_URL are required", file=sys.stderr)
        return 2
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING").upper())
    run_loop(run(token, api_url), chosen(os.environ.get("EVENT_LOOP"), wecom=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
