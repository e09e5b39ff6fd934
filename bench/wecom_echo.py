"""A bare aiohttp callback server: the baseline `daka wecom` is measured against.

Run as ``python -m bench.wecom_echo PORT`` with WECOM_TOKEN, WECOM_AES_KEY and WECOM_CORP_ID
set; every POST to WECOM_PATH (default /wecom) is verified, decrypted (`handlers.wecom.crypto`)
and acknowledged with an empty 200, nothing more; a bad one gets a 403. `/healthz` answers 200.
It stops on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from aiohttp import web

from handlers.wecom.crypto import CallbackError, WeComCrypto


def application(crypto: WeComCrypto, path: str) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        query = request.query
        try:
            crypto.open(
                await request.read(),
                query.get("msg_signature", ""),
                query.get("timestamp", ""),
                query.get("nonce", ""),
            )
        except CallbackError:
            return web.Response(status=403, text="")
        return web.Response(text="")

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.add_routes([web.post(path, receive), web.get("/healthz", healthz)])
    return app


async def serve(port: int) -> None:
    crypto = WeComCrypto(
        os.environ["WECOM_TOKEN"], os.environ["WECOM_AES_KEY"], os.environ["WECOM_CORP_ID"]
    )
    runner = web.AppRunner(application(crypto, os.environ.get("WECOM_PATH", "/wecom")))
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


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        print("usage: python -m bench.wecom_echo PORT", file=sys.stderr)
        return 2
    asyncio.run(serve(int(sys.argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
