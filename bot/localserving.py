"""What the stand-ins for a platform's HTTP API on this machine share (`bot.localapi` for
Telegram's Bot API, `bot.localwecom` for WeCom's): listening on a port of their own, being
stopped, `async with`, their address."""

from __future__ import annotations

from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web


class LocalServer:
    """An aiohttp server of `routes()` on this machine. A subclass says how large a request
    may be and whether a handler is cancelled with its client, and does its own work around
    `start` and `stop`."""

    MAX_BODY: ClassVar[int] = 1 << 20
    CANCEL_HANDLERS: ClassVar[bool] = False
    _runner: web.AppRunner | None = None
    _host: str = "127.0.0.1"
    _port: int = 0

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Start serving on ``host:port`` (0 = a free port). Can be restarted after stop()."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        app = web.Application(client_max_size=self.MAX_BODY)
        app.add_routes(self.routes())
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=self.CANCEL_HANDLERS, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._host, self._port = str(address[0]), int(address[1])
        return self

    async def stop(self) -> None:
        """Stop serving; requests in flight are cut off."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._runner is not None
