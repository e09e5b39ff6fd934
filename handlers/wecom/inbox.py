"""WeCom's callbacks, journaled before they are acknowledged and handled once, in order per
member.

The callback endpoint hands each event to `Inbox.take` before it answers WeCom (its
`before_ack` hook): the event is written to the journal (`storage.repos.inbox`), keyed by a
digest of its dedupe key, and committed; only then does WeCom get its 200. A retry of an event
already journaled (WeCom tries 3 times; a restart forgets what the endpoint remembered) is
acknowledged and not handled again. Each member's events are then handled one after the other
by a lane of their own (members side by side, at most `TURNS_AT_ONCE` turns in the database at
a time): the turn (`Turns.answer`) and the journal row, marked handled with the replies, commit
together; the replies are sent after the commit and marked sent. On start, replies a crash
held back are sent and events journaled but never handled are handled. A database that cannot
be reached is waited for; an event whose handling fails is answered with an apology and marked
handled, so that it stops nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any, Final, Protocol

from domain import metrics
from domain.clock import Clock
from handlers.wecom import messages
from handlers.wecom.messages import CHANNEL, Event, dedupe_key, person_of
from handlers.wecom.replies import Record, ReplySender
from storage.db import SessionFactory, database_unavailable
from storage.repo import Repo
from storage.repos.accounts import ErasedMeanwhile

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
TURNS_AT_ONCE: Final = 8  # turns in flight (database sessions); replies are sent beside them
EVENT_TYPES: Final = {
    cls.__name__: cls
    for cls in (
        messages.TextMessage,
        messages.ImageMessage,
        messages.LocationMessage,
        messages.LocationReport,
        messages.LocationPicked,
        messages.MenuClick,
        messages.EnterAgent,
        messages.CardPressed,
        messages.Unsupported,
    )
}


class Turns(Protocol):
    """What handles an event: its turn, in the session's transaction, and what to say when
    that failed."""

    async def answer(self, repo: Repo, event: Event) -> list[Record]: ...

    def apology(self, event: Event) -> list[Record]: ...


def dump_event(event: Event) -> str:
    """An event as the journal keeps it (JSON)."""
    return json.dumps({"type": type(event).__name__, **asdict(event)}, ensure_ascii=False)


def load_event(text: str) -> Event:
    """An event back from the journal; ValueError when it is not one."""
    fields: dict[str, Any] = json.loads(text)
    kind = EVENT_TYPES.get(str(fields.pop("type", "")))
    if kind is None:
        raise ValueError("not a journaled WeCom event")
    if kind is messages.CardPressed:
        fields["selected"] = tuple(
            messages.Selected(str(item["question_key"]), tuple(item["option_ids"]))
            for item in fields.get("selected", [])
        )
    event: Event = kind(**fields)
    return event


def journal_of(agent_id: int, *, first: bool) -> str:
    """The journal's channel of an app's events: "wecom" for the first app (as when a
    deployment had one), "wecom:<agent id>" for another, so that each app resumes its own
    events after a restart and answers them through itself."""
    return CHANNEL if first else f"{CHANNEL}:{agent_id}"


def journal_key(event: Event) -> str:
    """The journal's key of an event: a digest of its dedupe key (which may be long)."""
    return hashlib.sha256(dedupe_key(event).encode()).hexdigest()


class Inbox:
    """The journal, the member lanes and the replies of one WeCom app."""

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        turns: Turns,
        replies: ReplySender,
        *,
        sleep: Sleep = asyncio.sleep,
        turns_at_once: int = TURNS_AT_ONCE,
        journal: str = CHANNEL,
    ) -> None:
        self.sessions = sessions
        self.journal = journal  # the journal's channel: one per app (`journal_of`)
        self.clock = clock
        self.turns = turns
        self.replies = replies
        self.sleep = sleep
        self.duplicates = 0
        self.handled = 0
        self._waiting: dict[str, deque[tuple[int, Event | list[Record]]]] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._running = True
        self._turns = asyncio.Semaphore(turns_at_once)

    async def take(self, event: Event) -> None:
        """Journal an event (the endpoint's hook before the ack); a failure raises, and the
        endpoint answers WeCom 500 so that it tries again."""
        sender = person_of(event).external_id
        async with self.sessions() as session:
            row = await Repo(session).inbox.journal(
                channel=self.journal,
                key=journal_key(event),
                sender=sender,
                payload=dump_event(event),
                now=self.clock.now(),
            )
            await session.commit()
        if row is None:
            self.duplicates += 1
            return
        self._queue(sender, row, event)

    async def start(self) -> int:
        """Send the replies a crash held back, then handle the events it left unhandled;
        returns how many of either there were."""
        async with self.sessions() as session:
            repo = Repo(session)
            unreplied = await repo.inbox.unreplied(channel=self.journal)
            unhandled = await repo.inbox.unhandled(channel=self.journal)
        for pending in unreplied:
            try:
                records = json.loads(pending.body)
            except ValueError:
                records = []
            self._queue(pending.sender, pending.id, list(records))
        for pending in unhandled:
            try:
                event = load_event(pending.body)
            except (ValueError, TypeError, KeyError):
                log.warning("journaled wecom event %s cannot be read; skipped", pending.id)
                await self._mark_handled(pending.id, [])
                continue
            self._queue(pending.sender, pending.id, event)
        if unreplied or unhandled:
            log.info(
                "wecom: %d events' replies sent again, %d events handled after a restart",
                len(unreplied),
                len(unhandled),
            )
        return len(unreplied) + len(unhandled)

    async def idle(self) -> None:
        """Wait until everything taken so far is handled and its replies sent."""
        while self._lanes:
            await asyncio.gather(*list(self._lanes.values()), return_exceptions=True)

    async def close(self) -> None:
        """Finish what is under way; what is still waiting stays in the journal."""
        self._running = False
        for waiting in self._waiting.values():
            waiting.clear()
        await self.idle()

    def _queue(self, sender: str, row: int, item: Event | list[Record]) -> None:
        self._waiting.setdefault(sender, deque()).append((row, item))
        if sender not in self._lanes:
            task = asyncio.create_task(self._lane(sender))
            self._lanes[sender] = task

    async def _lane(self, sender: str) -> None:
        waiting = self._waiting[sender]
        try:
            while waiting and self._running:
                row, item = waiting.popleft()
                try:
                    if isinstance(item, list):
                        await self._send(sender, row, item)
                    else:
                        await self._handle(sender, row, item)
                except Exception:
                    log.exception("wecom event %s: not handled", row)
        finally:
            del self._lanes[sender]
            self._waiting.pop(sender, None)  # empty, or dropped at close (still journaled)

    async def _handle(self, sender: str, row: int, event: Event) -> None:
        delay, erased = 1.0, 0
        while True:
            try:
                records = await self._answer(row, event)
            except Exception as exc:
                if isinstance(exc, ErasedMeanwhile) and (erased := erased + 1) < 3:
                    continue  # rolled back: the turn runs again, from what the erasure left
                if database_unavailable(exc) and self._running:
                    log.warning("wecom event %s waits for the database: %s", row, exc)
                    await self.sleep(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                log.exception("wecom event %s failed", row, exc_info=exc)
                metrics.HANDLER_ERRORS.inc()
                records = self.turns.apology(event)
                if not await self._mark_handled(row, records):
                    return
            break
        if records is None:
            return
        self.handled += 1
        metrics.UPDATES.labels(CHANNEL).inc()
        await self._send(sender, row, records)

    async def _answer(self, row: int, event: Event) -> list[Record] | None:
        """The turn and the journal row in one transaction; None when another worker had
        handled the event already."""
        async with self._turns, self.sessions() as session:
            repo = Repo(session)
            records = await self.turns.answer(repo, event)
            replies = json.dumps(records, ensure_ascii=False) if records else None
            if not await repo.inbox.mark_handled(
                event_id=row, replies=replies, now=self.clock.now()
            ):
                await session.rollback()
                return None
            await session.commit()
        return records

    async def _mark_handled(self, row: int, records: list[Record]) -> bool:
        try:
            async with self.sessions() as session:
                await Repo(session).inbox.mark_handled(
                    event_id=row,
                    replies=json.dumps(records, ensure_ascii=False) if records else None,
                    now=self.clock.now(),
                )
                await session.commit()
        except Exception as exc:
            log.warning("wecom event %s could not be marked handled: %s", row, exc)
            return False
        return True

    async def _send(self, sender: str, row: int, records: list[Record]) -> None:
        if not records:
            return
        await self.replies.send(sender, records)
        try:
            async with self.sessions() as session:
                await Repo(session).inbox.mark_replied(event_ids=[row], now=self.clock.now())
                await session.commit()
        except Exception as exc:  # they are sent again on the next start
            log.warning("wecom event %s: its sent replies could not be recorded: %s", row, exc)
