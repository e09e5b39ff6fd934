"""The bench's WeCom side: the local WeCom telling each member's waiter when something reached
them, a callback driver that times each POST to its answer, the conversations members have
(a check-in; the same callbacks to a bare server, waiting for its answers or not) and the
latency percentiles."""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bench.common import ConversationError, now
from bot.localwecom import Attempt, CallbackDriver, Delivered, LocalWeCom, Push
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

    def vote(self, user: str, label: str) -> Callable[[], tuple[str, str] | None]:
        """The newest open vote card with an option labelled `label`: (task id, option id)."""

        def find() -> tuple[str, str] | None:
            for delivered in reversed(self.by_user.get(user, ())):
                card = delivered.card
                if card is None or card.replaced_by:
                    continue
                for option in card.body.get("checkbox", {}).get("option_list", []):
                    if option.get("text") == label:
                        return card.task_id, str(option.get("id"))
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

    def messages(self, user: str, count: int) -> Callable[[], int | None]:
        """How many messages reached the member, once they are `count` or more."""

        def find() -> int | None:
            got = len(self.by_user.get(user, ()))
            return got if got >= count else None

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
    sent: list[float] = field(default_factory=list)  # each POST's start (`now()`), as records
    # when its request line and headers were written to the socket (`StampedRequest`)
    written: list[float | None] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # by status or client error


_WRITTEN: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
    "written", default=None
)


class StampedRequest(aiohttp.ClientRequest):
    """For the client session of `TimedDriver`s (its `request_class`): notes when each POST's
    request went out (its headers written to the socket), which a busy client loop can make
    later than the POST began: the acknowledgement latency on the wire starts there. A
    subclass, not an aiohttp `TraceConfig`: tracing makes every request call all of its
    hooks, which cost the client a fifth of its throughput against the bare server (0.07 ms
    per POST), and so would have flattered the ratio."""

    async def send(self, conn: Any) -> aiohttp.ClientResponse:
        response = await super().send(conn)
        cell = _WRITTEN.get()
        if cell is not None and not cell:
            cell.append(now())
        return response


class TimedDriver(CallbackDriver):
    """A callback driver that times each POST (the acknowledgement latency)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = Attempts()

    async def post(self, body: bytes, query: dict[str, str]) -> Attempt:
        written: list[float] = []
        token = _WRITTEN.set(written)
        started = now()
        try:
            attempt = await super().post(body, query)
        finally:
            _WRITTEN.reset(token)
        self.attempts.records.append((attempt.status, now() - started))
        self.attempts.sent.append(started)
        self.attempts.written.append(written[0] if written else None)
        if attempt.status != 200:
            self.attempts.refused[attempt.error or str(attempt.status)] += 1
        return attempt


CALLBACKS = 6  # per check-in
TIANANMEN = (39.9087, 116.3975)
Q_TEMPERATURE = "请输入您今天测量的体温"
DONE_TEXTS = ("打卡成功", "打卡已更新")

Conversation = Callable[[str, float], Awaitable[None]]


# --------------------------------------------------------------------------- conversations
def checkin_conversation(wecom: WatchedWeCom, driver: TimedDriver) -> Conversation:
    """The health form from the 打卡 picker to the confirmation: 6 callbacks (the symptoms
    ticked on a vote card and submitted at once)."""

    async def talk(user: str, wait_s: float) -> None:
        async def acked(push: Awaitable[object]) -> None:
            done = await push
            if not getattr(done, "acknowledged", False):
                raise ConversationError(f"{user}: a callback was not acknowledged")

        await acked(driver.pick_location(user, *TIANANMEN, "北京市东城区"))
        await wecom.until(user, wecom.text_with(user, Q_TEMPERATURE), "temperature", wait_s)
        await acked(driver.send_text(user, "36.5"))
        task, none = await wecom.until(user, wecom.vote(user, "以上都没有"), "symptoms", wait_s)
        await acked(driver.submit(user, task, [none]))  # ticked in the client, then submitted
        task, key = await wecom.until(user, wecom.button(user, "否"), "exposure card", wait_s)
        await acked(driver.press(user, task, key))
        task, key = await wecom.until(user, wecom.button(user, "⏭ 跳过"), "photo card", wait_s)
        await acked(driver.press(user, task, key))
        task, key = await wecom.until(user, wecom.button(user, "✅ 确认提交"), "summary", wait_s)
        await acked(driver.press(user, task, key))
        await wecom.until(user, wecom.text_with(user, *DONE_TEXTS), "confirmation", wait_s)

    return talk


def echo_callbacks(driver: TimedDriver, user: str) -> list[Callable[[], Awaitable[Push]]]:
    """The check-in's 6 callbacks as a bare server gets them (cards it never sent)."""
    return [
        lambda: driver.pick_location(user, *TIANANMEN, "北京市东城区"),
        lambda: driver.send_text(user, "36.5"),
        lambda: driver.press(user, "t-symptoms", "done", card_type="vote_interaction"),
        lambda: driver.press(user, "t-exposure", "no"),
        lambda: driver.press(user, "t-photo", "skip"),
        lambda: driver.press(user, "t-summary", "confirm"),
    ]


def echo_conversation(driver: TimedDriver) -> Conversation:
    """The same 6 callbacks, each after the previous acknowledgement (no answer to wait for)."""

    async def talk(user: str, _wait_s: float) -> None:
        for push in echo_callbacks(driver, user):
            if not (await push()).acknowledged:
                raise ConversationError(f"{user}: a callback was not acknowledged")

    return talk


def replying_echo_conversation(wecom: WatchedWeCom, driver: TimedDriver) -> Conversation:
    """The same 6 callbacks to an echo that answers each with one message: each after the
    previous one's answer reached the member (as in `checkin_conversation`)."""

    async def talk(user: str, wait_s: float) -> None:
        before = len(wecom.by_user.get(user, ()))
        for n, push in enumerate(echo_callbacks(driver, user), start=1):
            if not (await push()).acknowledged:
                raise ConversationError(f"{user}: a callback was not acknowledged")
            await wecom.until(user, wecom.messages(user, before + n), f"answer {n}", wait_s)

    return talk


# --------------------------------------------------------------------------- latency
def percentiles(latencies: Sequence[float]) -> str:
    if not latencies:
        return "-"
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.50):.1f} ms, p99 {at(0.99):.1f} ms, max {1000 * ordered[-1]:.1f} ms"


def p99_ms(latencies: Sequence[float]) -> float | None:
    if not latencies:
        return None
    ordered = sorted(latencies)
    return 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
