"""The bench's WeCom side: the local WeCom telling each member's waiter when something reached
them, and a callback driver that times each POST to its answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from bench.common import ConversationError, now
from bot.localwecom import Attempt, CallbackDriver, Delivered, LocalWeCom
from bot.localwecom.records import JSON, Grant

T = TypeVar("T")


class WatchedWeCom(LocalWeCom):
    """LocalWeCom keeping each member's messages apart and waking whoever waits on them."""

    def __init__(self) -> None:
        super().__init__()
        self.by_user: dict[str, list[Delivered]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    async def _send(self, request: web.Request, grant: Grant | None) -> JSON:
        before = len(self.delivered)
        try:
            return await super()._send(request, grant)
        finally:
            for delivered in self.delivered[before:]:
                if not delivered.dropped:
                    self.by_user.setdefault(delivered.userid, []).append(delivered)
                self._wake(delivered.userid)

    async def _update_card(self, request: web.Request, grant: Grant | None) -> JSON:
        users: tuple[str, ...] = ()
        try:
            body = json.loads(await request.read())
            issued = self.codes.get(str(body.get("response_code", "")))
            users = issued.card.recipients if issued is not None else ()
        except (ValueError, AttributeError):
            pass
        try:
            return await super()._update_card(request, grant)
        finally:
            for user in users:
                self._wake(user)

    def _wake(self, user: str) -> None:
        event = self._changed.get(user)
        if event is not None:
            event.set()

    async def until(self, user: str, find: Callable[[], T | None], what: str, wait_s: float) -> T:
        """What `find` finds in the member's messages, once it is there (a ConversationError
        with the member's screen after `wait_s`)."""
        event = self._changed.setdefault(user, asyncio.Event())
        deadline = now() + wait_s
        while True:
            found = find()
            if found is not None:
                return found
            event.clear()
            remaining = deadline - now()
            if remaining <= 0:
                raise ConversationError(
                    f"{user}: no {what} within {wait_s:.0f} s\n{self.screen(user)}"
                )
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                continue

    def text_with(self, user: str, *needles: str) -> Callable[[], str | None]:
        """The first message (as it stands now) holding one of `needles`."""

        def find() -> str | None:
            for delivered in self.by_user.get(user, ()):
                text = shown(delivered)
                if any(n in text for n in needles):
                    return text
            return None

        return find

    def button(self, user: str, label: str) -> Callable[[], tuple[str, str] | None]:
        """The newest card with a live button labelled `label`: (task id, button key)."""

        def find() -> tuple[str, str] | None:
            for delivered in reversed(self.by_user.get(user, ())):
                card = delivered.card
                if card is None or card.replaced_by:
                    continue
                for button in card.body.get("button_list", []):
                    if button.get("text") == label:
                        return card.task_id, str(button.get("key"))
            return None

        return find

    def screen(self, user: str) -> str:
        return "\n---\n".join(shown(d) for d in self.by_user.get(user, ()))


def shown(delivered: Delivered) -> str:
    """A message's text as the member sees it now (a card: its title and the text beneath)."""
    if delivered.msgtype != "template_card":
        return delivered.text
    body: dict[str, Any] = delivered.card.body if delivered.card else delivered.body
    title = body.get("main_title", {}).get("title", "")
    return "\n".join(t for t in (title, body.get("sub_title_text", "")) if t)


@dataclass
class Attempts:
    """Every POST's answer status and seconds from sending to the answer."""

    records: list[tuple[int | None, float]] = field(default_factory=list)


class TimedDriver(CallbackDriver):
    """A callback driver that times each POST (the acknowledgement latency)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = Attempts()

    async def post(self, body: bytes, query: dict[str, str]) -> Attempt:
        started = now()
        attempt = await super().post(body, query)
        self.attempts.records.append((attempt.status, now() - started))
        return attempt
