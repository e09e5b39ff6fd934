"""Updates: what users do, queued for the bot, and getUpdates' long poll that hands them over.

Everything is event driven: a pushed update wakes the parked long poll at once (no sleeps), a
second concurrent getUpdates ends the first with 409 as Telegram does, and ``offset`` confirms
what the bot has seen. While a webhook is set, updates go to :mod:`.webhook` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from typing import Any

from .failures import DEFAULT_DESCRIPTIONS
from .params import ApiError, as_float, as_int
from .records import JSON
from .state import ServerState

# Telegram does not deliver these unless explicitly listed in allowed_updates.
_NOT_DEFAULT_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def update_type(update: JSON) -> str:
    return next((k for k in update if k != "update_id"), "")


def update_chat_id(update: JSON) -> int | None:
    """The chat an update belongs to (its sender's, for updates without a chat)."""
    body = update.get(update_type(update))
    if not isinstance(body, dict):
        return None
    chat = body.get("chat")
    if chat is None and isinstance(body.get("message"), dict):
        chat = body["message"].get("chat")
    if isinstance(chat, dict) and isinstance(chat.get("id"), int):
        return int(chat["id"])
    sender = body.get("from")
    if isinstance(sender, dict) and isinstance(sender.get("id"), int):
        return int(sender["id"])
    return None


def describe_update(update: JSON) -> str:
    """One line for a transcript: ``message '/start'``, ``press data='ok'``."""
    kind = update_type(update)
    body = update.get(kind)
    if not isinstance(body, dict):
        return f"{kind}"
    if kind == "callback_query":
        return f"press data={body.get('data')!r}"
    for key in ("text", "caption"):
        if key in body:
            return f"{kind} {body[key]!r}"
    for key in ("location", "photo", "document", "sticker", "contact", "video", "voice"):
        if key in body:
            extra = " (forwarded)" if "forward_origin" in body else ""
            detail = body[key] if key == "location" else ""
            return f"{kind} [{key}] {detail}{extra}".rstrip()
    return kind


class UpdateQueue(ServerState):
    """push_update and getUpdates."""

    def push_update(self, update: JSON) -> int:
        """Enqueue an update (its update_id is assigned here) and wake the long poll."""
        update_id = self._next_update_id
        self._next_update_id += 1
        full: JSON = {"update_id": update_id}
        full.update((k, v) for k, v in update.items() if k != "update_id")
        self.updates.append(full)
        kind = update_type(full)
        body = full.get(kind)
        chat_id = update_chat_id(full)
        if isinstance(body, dict):
            if kind == "callback_query" and "id" in body:
                self._callback_chats[str(body["id"])] = chat_id
            chat = body.get("chat")
            if isinstance(chat, dict) and isinstance(chat.get("id"), int):
                self._known_chats.setdefault(chat["id"], chat)
                if kind == "message" and isinstance(body.get("message_id"), int):
                    self._chat(chat["id"]).user_messages[body["message_id"]] = body
        if chat_id is not None:
            self._chat(chat_id).log.append(("in", full))
        if not self._is_allowed(kind):
            self.dropped_updates.append(full)
        elif self.webhook_url:
            self._enqueue_for_webhook(full)
        else:
            self._queue.append(full)
            self._wake_poller("update")
        self._notify()
        return update_id

    def continue_update_ids(self, after: int) -> None:
        """Number the next updates after ``after``: Telegram keeps counting across a bot's
        restarts, and a bot that resumes from a stored offset skips anything numbered below."""
        self._next_update_id = max(self._next_update_id, after + 1)

    @property
    def polling(self) -> bool:
        """True while a getUpdates long poll is parked waiting for updates."""
        return self._poll_waiter is not None and not self._poll_waiter.done()

    @property
    def allowed_updates(self) -> list[str] | None:
        """Update types the bot asked for (getUpdates or setWebhook); None = the default set."""
        return None if self._allowed_updates is None else sorted(self._allowed_updates)

    def _is_allowed(self, kind: str) -> bool:
        if self._allowed_updates is None:
            return kind not in _NOT_DEFAULT_UPDATES
        return kind in self._allowed_updates

    async def _m_get_updates(self, params: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = as_int(params.get("offset"))
        limit = max(1, min(100, as_int(params.get("limit"), 100)))
        timeout = max(0.0, as_float(params.get("timeout") or 0, "timeout"))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._set_allowed_updates(allowed)
        self._confirm(offset)
        # Telegram terminates an older concurrent long poll with 409 Conflict.
        self._wake_poller("conflict")
        if not self._queue and timeout > 0 and not self._closing:
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            self._poll_waiter = fut
            self._notify()  # `polling` became true
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fut, timeout)
            finally:
                if self._poll_waiter is fut:
                    self._poll_waiter = None
            if fut.done() and not fut.cancelled() and fut.result() == "conflict":
                raise ApiError(409, DEFAULT_DESCRIPTIONS[409])
        return list(itertools.islice(self._queue, limit))

    def _set_allowed_updates(self, allowed: list[Any]) -> None:
        self._allowed_updates = frozenset(str(a) for a in allowed) if allowed else None
        kept: deque[JSON] = deque()
        for update in self._queue:
            if self._is_allowed(update_type(update)):
                kept.append(update)
            else:
                self.dropped_updates.append(update)
        self._queue = kept
        self.dropped_updates.extend(
            self._take_lane_updates(lambda update: self._is_allowed(update_type(update)))
        )

    def _confirm(self, offset: int) -> None:
        queue = self._queue
        if offset > 0:
            while queue and queue[0]["update_id"] < offset:
                queue.popleft()
            self.confirmed_offset = max(self.confirmed_offset, offset)
        elif offset < 0:
            while len(queue) > -offset:
                queue.popleft()
            if queue:
                self.confirmed_offset = max(self.confirmed_offset, queue[0]["update_id"])

    def _drop_pending(self) -> None:
        pending = [*self._queue, *self._take_lane_updates(lambda update: False)]
        self._queue.clear()
        if pending:
            last = max(int(u["update_id"]) for u in pending)
            self.confirmed_offset = max(self.confirmed_offset, last + 1)
            self.dropped_updates.extend(pending)
