"""Bare aiohttp callback servers: the baselines `daka wecom` is measured against.

Run as ``python -m bench.wecom_echo PORT [--reply]`` with WECOM_TOKEN, WECOM_AES_KEY and
WECOM_CORP_ID set; every POST to WECOM_PATH (default /wecom) is verified, decrypted
(`handlers.wecom.crypto`) and acknowledged with an empty 200; a bad one gets a 403. Without
`--reply` that is all. With it (an echo bot, as `bench.echo_bot` is for Telegram) the event is
read (`handlers.wecom.messages.parse`) and, after the acknowledgement, its sender is answered
with one text message through the product's own client (`handlers.wecom.api.WeComAPI`: gettoken
cached, message/send), which needs WECOM_AGENT_ID, WECOM_SECRET and WECOM_API_URL too; a reply
WeCom refuses is logged as an error. `/healthz` answers 200. It stops on SIGINT/SIGTERM, after
the replies under way."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from bot.loop import chosen
from bot.loop import run as run_loop
from handlers.wecom.api import App, WeComAPI
from handlers.wecom.crypto import CallbackError, WeComCrypto
from handlers.wecom.messages import TextMessage, parse

log = logging.getLogger("bench.wecom_echo")


class Echo:
    """Answers each sender with one text message (its text, or "ok"), after the 200."""

    def __init__(self, api: WeComAPI) -> None:
        self.api = api
        self.replying: set[asyncio.Task[None]] = set()

    def answer(self, decrypted: bytes) -> None:
        event = parse(decrypted)
        text = event.content if isinstance(event, TextMessage) and event.content else "ok"
        task = asyncio.create_task(self._send(event.user, text))
        self.replying.add(task)
        task.add_done_callback(self.replying.discard)

    async def _send(self, user: str, text: str) -> None:
        delivery = await self.api.send_text([user], text)
        if not delivery.sent:
            log.error("wecom_echo: the reply to a member was not sent: %s", delivery.outcome)

    async def drain(self) -> None:
        if self.replying:
            await asyncio.gather(*self.replying, return_exceptions=True)


def application(crypto: WeComCrypto, path: str, echo: Echo | None = None) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        query = request.query
        try:
            decrypted = crypto.open(
                await request.read(),
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
            if echo is not None:
                echo.answer(decrypted)  # sent once this handler has returned the 200
        except CallbackError:  # messages.BadMessage too
            return web.Response(status=403, text="")
        return web.Response(text="")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.post(path, receive), web.get("/healthz", healthz)])
    return app


async def serve(port: int, *, reply: bool) -> None:
    env = os.environ
    crypto = WeComCrypto(env["WECOM_TOKEN"], env["WECOM_AES_KEY"], env["WECOM_CORP_ID"])
    async with aiohttp.ClientSession() as http:  # as daka wecom's
        echo = None
        if reply:
            app = App(env["WECOM_CORP_ID"], int(env["WECOM_AGENT_ID"]), env["WECOM_SECRET"])
            echo = Echo(WeComAPI(http, app, base_url=env["WECOM_API_URL"]))
        runner = web.AppRunner(application(crypto, env.get("WECOM_PATH", "/wecom"), echo))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()  # as daka wecom's
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stopped.set)
        try:
            await stopped.wait()
        finally:
            await runner.cleanup()
            if echo is not None:
                await echo.drain()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wecom_echo", description="A bare WeCom callback server."
    )
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--reply", action="store_true", help="answer each callback with one text message"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING").upper())
    run_loop(serve(args.port, reply=args.reply), chosen(os.environ.get("EVENT_LOOP"), wecom=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
