"""Failure injection: what Telegram does to a bot on a bad day.

A test (or a demo) can make calls answer 429 with ``retry_after``, 403 for a user who blocked
the bot, 5xx, or any status; enforce Telegram's sending limits; and *hold* answers back, so a
client can be killed while its calls are on the wire.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from .params import ApiError
from .records import Call
from .state import ServerState

DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
# The methods Telegram's flood limits count.
_MESSAGE_SENDING = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "senddocument",
        "sendvideo",
        "sendaudio",
        "sendvoice",
        "sendanimation",
        "sendsticker",
        "sendvideonote",
        "sendlocation",
        "sendvenue",
        "sendcontact",
        "sendpoll",
        "senddice",
        "sendmediagroup",
        "copymessage",
        "copymessages",
        "forwardmessage",
        "forwardmessages",
    }
)


@dataclass(slots=True)
class FailureRule:
    """An injected failure; see :meth:`LocalBotAPI.fail`. ``times=None`` means forever."""

    method: str  # lower-case method name or "*"
    status: int
    times: int | None
    chat_id: int | None
    retry_after: int | None
    description: str
    hits: int = 0

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, chat_id: int | None) -> bool:
        if self.exhausted:
            return False
        if self.method not in ("*", method.lower()):
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError:
        params = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.status, self.description, params)


@dataclass(eq=False)
class Hold:
    """Answers kept back; see :meth:`LocalBotAPI.hold`. ``held`` lists the calls carried out
    (Telegram has done them) whose answers have not left yet: what is on the wire."""

    method: str  # lower-case method name or "*"
    after: int
    seen: int = 0
    held: list[Call] = field(default_factory=list)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, method: str) -> bool:
        return self.method in ("*", method.lower())

    def release(self) -> None:
        """Let every held answer go, and answer later calls at once."""
        self.released.set()


class FailureInjection(ServerState):
    """fail, hold, block and the flood limits."""

    def fail(
        self,
        method: str,
        status: int,
        *,
        times: int | None = 1,
        chat_id: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> FailureRule:
        """Make the next ``times`` matching calls (None = all) answer with an error.

        ``method`` is case-insensitive, ``"*"`` matches any method. For 429 ``retry_after``
        defaults to 1 and is put in ``parameters`` as Telegram does.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
            description = description.format(retry_after=retry_after)
        rule = FailureRule(
            method=method.lower(),
            status=status,
            times=times,
            chat_id=chat_id,
            retry_after=retry_after,
            description=description,
        )
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        self._failures.clear()

    def hold(self, method: str, *, after: int = 0) -> Hold:
        """Carry out and record the calls of ``method`` (``"*"``: any) after the first
        ``after``, but keep their HTTP answers back until ``release()`` (or ``stop()``): the
        client waits as it would for an answer lost on a slow network. ``Hold.held`` lists
        them, so a test can say exactly which calls were on the wire when it killed a client.
        """
        hold = Hold(method=method.lower(), after=after)
        self._holds.append(hold)
        return hold

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: every call for this chat answers 403 until unblock()."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def enforce_limits(
        self,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
        *,
        retry_after: int = 1,
        count_edits: bool = False,
    ) -> None:
        """Answer 429 (retry_after) for message sends over the given sliding 1s windows."""
        self._limit_global = global_per_second
        self._limit_chat = per_chat_per_second
        self._limit_retry_after = retry_after
        self._limit_count_edits = count_edits
        self._window_global.clear()
        self._window_chat.clear()

    def disable_limits(self) -> None:
        self._limit_global = None
        self._limit_chat = None

    def _refuse(self, lname: str, chat_id: int | None) -> None:
        """Raise the error an injected failure, a block or a flood limit gives this call."""
        for rule in self._failures:
            if rule.matches(lname, chat_id):
                rule.hits += 1
                if rule.exhausted:
                    self._failures.remove(rule)
                raise rule.error()
        if chat_id is not None and chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        self._check_limits(lname, chat_id)

    def _check_limits(self, lname: str, chat_id: int | None) -> None:
        if self._limit_global is None and self._limit_chat is None:
            return
        counted = lname in _MESSAGE_SENDING or (
            self._limit_count_edits and lname.startswith("editmessage")
        )
        if not counted:
            return
        now = self.monotonic()
        horizon = now - 1.0
        window = self._window_global
        while window and window[0] <= horizon:
            window.popleft()
        chat_window: deque[float] | None = None
        if chat_id is not None and self._limit_chat is not None:
            chat_window = self._window_chat.get(chat_id)
            if chat_window is None:
                chat_window = self._window_chat[chat_id] = deque()
            while chat_window and chat_window[0] <= horizon:
                chat_window.popleft()
        over_global = self._limit_global is not None and len(window) >= self._limit_global
        over_chat = (
            chat_window is not None
            and self._limit_chat is not None
            and len(chat_window) >= self._limit_chat
        )
        if over_global or over_chat:
            retry = self._limit_retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        window.append(now)
        if chat_window is not None:
            chat_window.append(now)

    async def _keep_back(self, call: Call) -> None:
        """Hold the answer to ``call`` if a :class:`Hold` asks for it."""
        for hold in self._holds:
            if hold.matches(call.method) and not hold.released.is_set():
                hold.seen += 1
                if hold.seen > hold.after:
                    hold.held.append(call)
                    self._notify()
                    await hold.released.wait()
                    return
