"""Plain (synchronous) filters run inline instead of in a worker thread.

aiogram hands every filter that is not a coroutine function — each magic filter such as `F.text`
or `F.location` — to `asyncio.to_thread`, so routing one update cost a thread hop per filter it
tried. Ours are attribute checks, cheaper than the hop. `bot.app.create_dispatcher` calls
`inline_sync_filters` once the routers are built; it rewrites aiogram's `FilterObject`s, so
`SHIM` checks aiogram's release and the fields it sets first. aiogram is imported only when it
runs (so `bot.shims` can be imported before aiogram)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from bot.shims.compat import Shim

if TYPE_CHECKING:
    from aiogram import Router


def _filter_fields() -> list[str]:
    """`FilterObject`'s `callback` and `awaitable` are dataclass fields (set in `__init__`), and
    observers keep their own filters in `_handler`, which only an observer instance has."""
    from dataclasses import fields

    from aiogram import Router
    from aiogram.dispatcher.event.handler import FilterObject

    problems = [
        f"aiogram.dispatcher.event.handler:FilterObject.{name} is missing"
        for name in ("callback", "awaitable")
        if name not in {f.name for f in fields(FilterObject)}
    ]
    if not hasattr(Router().message, "_handler"):
        problems.append("aiogram:Router().message._handler is missing")
    return problems


SHIM = Shim(
    name="inline synchronous filters (bot/shims/inline_filters.py)",
    written_for={"aiogram": "3.31"},
    names=("aiogram.dispatcher.event.handler:CallableObject.call",),
    probe=_filter_fields,
    buys="magic filters run on the event loop, not one worker-thread hop per filter tried",
)


def inline_sync_filters(router: Router) -> int:
    """Wrap each synchronous filter of `router` and the routers under it in a coroutine
    function, once: aiogram then awaits it instead of sending it to a thread. Returns how many
    (0 when `SHIM` steps aside)."""
    if not _allowed():
        return 0
    count = 0
    for each in (router, *router.chain_tail):
        for observer in each.observers.values():
            handlers = (
                [observer._handler, *observer.handlers]
                if hasattr(observer, "_handler")
                else observer.handlers
            )
            for handler in handlers:
                for check in handler.filters or []:
                    if not check.awaitable:
                        check.callback = _as_coroutine(check.callback)
                        check.awaitable = True
                        count += 1
    return count


@cache
def _allowed() -> bool:
    return SHIM.enabled()  # once per process: tests build many dispatchers


def _as_coroutine(callback: Callable[..., Any]) -> Callable[..., Any]:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return callback(*args, **kwargs)

    return run
