"""WeCom's callbacks, journaled before they are acknowledged and handled once, in order per
member.

The callback endpoint hands each event to `Inbox.take` before it answers WeCom (its
`before_ack` hook): the event is written to the journal (`storage.repos.inbox`), keyed by a
digest of its dedupe key, and committed; only then does WeCom get its 200. Callbacks that
arrive while a journal write is under way are written together by the next one, in one
statement and one transaction (group commit), and each is acknowledged once that commits; a
failure answers every one of them 500, so that WeCom tries again. A retry of an event already
journaled (WeCom tries 3 times; a restart forgets what the endpoint remembered) is acknowledged
and not handled again. Each member's events are then handled one after the other by a lane of
their own, members side by side: the turns waiting when a transaction begins (at most
`TURNS_AT_ONCE`, each of another member) run in it together, with their journal rows marked
handled and their replies kept, as Telegram's polling batches do; when one of them fails, the
batch rolls back and each runs again on its own, so that the failure costs only its own event.
The replies are sent after the commit, and the rows of those sent are marked so together, a
moment later (a crash between them sends those replies again). On SQLite, the one writer, the
inbox writes in one transaction at a time, so that none waits on SQLite's busy timeout. On
start, replies a crash held back are sent and events journaled but never handled are handled.
A database that cannot be reached is waited for; an event whose handling fails is answered
with an apology and marked handled, so that it stops nothing."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict
from typing import Any, Final, Protocol, TypeVar

from domain import metrics
from domain.clock import Clock
from handlers.wecom import messages
from handlers.wecom.messages import CHANNEL, Event, dedupe_key, person_of
from handlers.wecom.replies import Record, ReplySender
from storage.db import SessionFactory, database_unavailable, is_sqlite
from storage.repo import Repo
from storage.repos.accounts import ErasedMeanwhile

log = logging.getLogger(__name__)
T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
TURNS_AT_ONCE: Final = 32  # turns in one transaction; replies are sent beside them
STUCK_AFTER: Final = 0.5  # seconds holding the writer before others go beside (_Writer)
GIVE_WAY_AFTER: Final = 0.01  # seconds of turns before callbacks waiting to be journaled
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

    async def prepare(self, repo: Repo, events: Sequence[Event]) -> None:
        """Read what the turns of `events`, in `repo`'s transaction, all need."""
        ...

    async def answer(self, repo: Repo, event: Event) -> list[Record]: ...

    async def finish(self, repo: Repo) -> None:
        """After the prepared turns in `repo`'s transaction, just before it commits."""
        ...

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
        self.turns_at_once = max(1, turns_at_once)
        self.duplicates = 0
        self.handled = 0
        self.journal_writes = 0  # transactions that journaled callbacks
        self.batches = 0  # transactions that took turns together
        self._waiting: dict[str, deque[tuple[int, Event | list[Record]]]] = {}
        self._lanes: dict[str, asyncio.Task[None]] = {}
        self._running = True
        bind = sessions.kw.get("bind")
        url = getattr(bind, "url", None)
        one_writer = url is None or is_sqlite(url.render_as_string())
        self._writer = _Writer(one_writer)
        self._to_journal: list[tuple[Event, asyncio.Future[None]]] = []
        self._to_answer: list[tuple[int, Event, asyncio.Future[list[Record] | None]]] = []
        self._replied: list[int] = []
        self._journaling: asyncio.Task[None] | None = None
        self._journal_waits = False
        self._answering: set[asyncio.Task[None]] = set()
        self._batch_since: dict[asyncio.Task[Any], float] = {}  # each worker's transaction
        self._marking: asyncio.Task[None] | None = None

    async def take(self, event: Event) -> None:
        """Journal an event (the endpoint's hook before the ack), with whatever arrives beside
        it; a failure raises, and the endpoint answers WeCom 500 so that it tries again."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._to_journal.append((event, done))
        self._journaling = _running(self._journaling, self._journal_all)
        await done

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
        """Wait until everything taken so far is handled, its replies sent and marked so."""
        while tasks := self._tasks():
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Finish what is under way; what is still waiting stays in the journal."""
        self._running = False
        for waiting in self._waiting.values():
            waiting.clear()
        await self.idle()

    def _tasks(self) -> list[asyncio.Task[None]]:
        """The lanes and the writers under way."""
        writers = (self._journaling, *self._answering, self._marking)
        return [*self._lanes.values(), *(t for t in writers if t is not None and not t.done())]

    async def _journal_all(self) -> None:
        """Write what was taken, in one transaction per round; what arrives meanwhile waits
        for the next round."""
        while self._to_journal:
            self._journal_waits = True  # a transaction of turns gives way
            async with self._writer.turn():
                self._journal_waits = False
                batch, self._to_journal = self._to_journal, []
                entries = [
                    (journal_key(event), person_of(event).external_id, dump_event(event))
                    for event, _ in batch
                ]
                try:
                    async with self.sessions() as session:
                        kept = await Repo(session).inbox.journal_many(
                            channel=self.journal, events=entries, now=self.clock.now()
                        )
                        await session.commit()
                    self.journal_writes += 1
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                    continue
            for (event, done), (key, sender, _) in zip(batch, entries, strict=True):
                row = kept.pop(key, None)
                if row is None:
                    self.duplicates += 1
                else:
                    self._queue(sender, row, event)
                if not done.done():
                    done.set_result(None)

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
        """The event's turn, in the next transaction of turns; None when another worker had
        handled the event already."""
        done: asyncio.Future[list[Record] | None] = asyncio.get_running_loop().create_future()
        self._to_answer.append((row, event, done))
        self._answer_beside()
        return await done

    async def _answer_all(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        while self._to_answer:
            batch = [item for item in self._to_answer[: self.turns_at_once] if not item[2].done()]
            del self._to_answer[: self.turns_at_once]
            if not batch:
                continue
            if me is not None:
                self._batch_since[me] = loop.time()
            watch = _Every(STUCK_AFTER, self._answer_beside)  # for turns queued meanwhile
            try:
                async with self._writer.turn():
                    outcomes = await self._answer_batch([(row, event) for row, event, _ in batch])
            finally:
                watch.cancel()
                if me is not None:
                    self._batch_since.pop(me, None)
            self._to_answer[:0] = batch[len(outcomes) :]  # given way to callbacks: next time
            for (_, _, done), outcome in zip(batch, outcomes, strict=False):
                if done.done():
                    continue
                if isinstance(outcome, Exception):
                    done.set_exception(outcome)
                else:
                    done.set_result(outcome)

    def _answer_beside(self) -> None:
        """A worker for the turns queued, unless one will take them: the first, or one beside
        workers whose transactions have taken more than `STUCK_AFTER` (a turn waiting on
        something)."""
        if not self._to_answer:
            return
        now = asyncio.get_running_loop().time()
        for task in self._answering:
            if not task.done() and now - self._batch_since.get(task, now) < STUCK_AFTER:
                return  # it takes them next
        task = asyncio.create_task(self._answer_all())
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def _answer_batch(
        self, batch: list[tuple[int, Event]]
    ) -> list[list[Record] | Exception | None]:
        """The turns together (the first of them, when callbacks wait to be journaled); when
        that fails (a turn's bug, or an event another worker took), each on its own."""
        if len(batch) > 1:
            try:
                together = await self._answer_together(batch)
            except Exception as exc:
                if database_unavailable(exc):
                    return [exc] * len(batch)
                log.info("wecom: %d turns together failed (%r); one by one", len(batch), exc)
            else:
                self.batches += 1
                return list(together)
        outcomes: list[list[Record] | Exception | None] = []
        for row, event in batch:
            try:
                outcomes.append(await self._answer_one(row, event))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    async def _answer_together(self, batch: list[tuple[int, Event]]) -> list[list[Record]]:
        """The turns in one transaction, then their rows claimed (marked handled) and their
        replies kept. Callbacks waiting for the journal (the one writer) wait at most
        `GIVE_WAY_AFTER` seconds: the turns taken by then commit, the others go next time."""
        loop = asyncio.get_running_loop()
        until = loop.time() + GIVE_WAY_AFTER
        async with self.sessions() as session:
            repo = Repo(session)
            answers: list[list[Record]] = []
            replies: dict[int, str] = {}
            await self.turns.prepare(repo, [event for _, event in batch])
            for row, event in batch:
                records = await self.turns.answer(repo, event)
                if records:
                    replies[row] = json.dumps(records, ensure_ascii=False)
                answers.append(records)
                if self._journal_waits and loop.time() >= until:
                    break
            await self.turns.finish(repo)
            rows = [row for row, _ in batch[: len(answers)]]
            if await repo.inbox.claim(event_ids=rows, now=self.clock.now()) != len(rows):
                raise _Taken(f"{len(rows)} events, some of them handled already")
            await repo.inbox.keep_replies(replies=replies)
            await session.commit()
        return answers

    async def _answer_one(self, row: int, event: Event) -> list[Record] | None:
        """The turn and the journal row in one transaction; None when another worker had
        handled the event already."""
        async with self.sessions() as session:
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
            async with self._writer.turn(), self.sessions() as session:
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
        self._replied.append(row)
        self._marking = _running(self._marking, self._mark_all)

    async def _mark_all(self) -> None:
        """Record sent replies, those sent meanwhile together in one transaction."""
        while self._replied:
            rows, self._replied = self._replied, []
            try:
                async with self._writer.turn(), self.sessions() as session:
                    await Repo(session).inbox.mark_replied(event_ids=rows, now=self.clock.now())
                    await session.commit()
            except Exception as exc:  # they are sent again on the next start
                log.warning(
                    "wecom: %d events' sent replies could not be recorded: %s", len(rows), exc
                )


class _Writer:
    """On SQLite, one writing transaction of the inbox at a time, so that none waits in
    SQLite's busy timeout (its sleeps stretched the acknowledgements to seconds); except
    beside one that has held the writer for `STUCK_AFTER` (a turn waiting on something, such
    as a photo downloaded): then SQLite's own locking takes over, as with several writers."""

    def __init__(self, one: bool) -> None:
        self._lock = asyncio.Lock() if one else None

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if self._lock is None:
            yield
            return
        try:
            # Not asyncio.wait_for: on 3.11 it can swallow a cancellation that comes as the
            # lock is granted (a crash, a shutdown), and the cancelled turn would go on.
            async with asyncio.timeout(STUCK_AFTER):
                await self._lock.acquire()
        except TimeoutError:
            yield  # beside the transaction that holds it
            return
        try:
            yield
        finally:
            self._lock.release()


class _Every:
    """`action` every `seconds`, until cancelled."""

    def __init__(self, seconds: float, action: Callable[[], None]) -> None:
        self._seconds = seconds
        self._action = action
        self._handle = asyncio.get_running_loop().call_later(seconds, self._fire)

    def _fire(self) -> None:
        self._action()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._fire)

    def cancel(self) -> None:
        self._handle.cancel()


class _Taken(Exception):
    """Another worker handled some of a batch's events: take them one by one."""


def _running(
    task: asyncio.Task[None] | None, work: Callable[[], Coroutine[Any, Any, None]]
) -> asyncio.Task[None]:
    """`task` while it runs (it takes what was queued before it ends), else `work` anew."""
    if task is not None and not task.done():
        return task
    return asyncio.create_task(work())
