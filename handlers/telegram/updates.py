"""Handling updates with the journal, whichever way they arrive (long polling or webhooks).

Updates are handled in one database transaction per batch: handlers' writes, FSM steps and the
journal rows (with the replies each update produced) commit together, and only then do the
replies go out. A crash before the commit loses nothing (Telegram delivers again; nothing of it
was stored), a crash after it loses no reply (they are in the journal and sent on start), and
an update delivered twice is skipped by the journal. A handler that fails makes the batch roll
back and its updates run one by one, so the failure costs only its own update. When the
database cannot be reached at all, each update gets a "try again in a moment" answer instead
of silence, and the process keeps going."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from pydantic import ValidationError

from domain import metrics
from domain.clock import Clock
from domain.i18n import LOCALE_OF, Translator, _
from domain.logcontext import log_context
from handlers.telegram.context import Batch, current_batch
from handlers.telegram.fsm import AfterCommit, DbStorage
from handlers.telegram.i18n import language_from_telegram
from handlers.telegram.middlewares import load_visitors
from handlers.telegram.replies import ReplySender, current_replies, dump
from storage.db import SessionFactory, database_unavailable
from storage.repo import Repo
from storage.repos.accounts import ErasedMeanwhile, erasures_seen

log = logging.getLogger(__name__)

MARK_INTERVAL = 0.05
ERASURE_RETRIES = 3  # a batch whose sender was erased meanwhile runs again (then fails)


@dataclass(frozen=True)
class Unreadable:
    """An update aiogram's models cannot hold (a Bot API change, a broken relay): confirmed
    and journaled without handling, so that it stops nothing and never comes again."""

    update_id: int | None
    problem: str


def read_update(raw: object, bot: Bot) -> Update | Unreadable:
    """The update in a delivery, or what is wrong with it (named without its contents)."""
    try:
        return Update.model_validate(raw, context={"bot": bot})
    except ValidationError as exc:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        where = ".".join(str(part) for part in errors[0]["loc"]) or "the update"
        return Unreadable(
            update_id if isinstance(update_id, int) and not isinstance(update_id, bool) else None,
            f"{len(errors)} problem(s), first at {where}: {errors[0]['msg']}",
        )


@dataclass
class UpdateProcessor:
    """The journaled unit of work shared by the polling loop and the webhook server."""

    bot: Bot
    dp: Dispatcher
    sessions: SessionFactory
    clock: Clock
    last_handled: int = 0
    replies: ReplySender | None = None
    _replied: list[int] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _marking: asyncio.Task[None] | None = None

    async def start(self, *, resend_older_than: timedelta | None = None) -> int:
        """Start sending; first send what an earlier run committed but did not get to send
        (only replies older than `resend_older_than`, when other processes may be sending
        theirs right now). Returns how many updates' replies were sent again."""
        self.replies = ReplySender(
            self.bot, self._replied.append, database_url=database_url(self.sessions)
        )
        self._stop.clear()
        self._marking = asyncio.create_task(self._keep_marking())
        resent = await self.resend_replies(older_than=resend_older_than)
        if resent:
            log.info("sent the replies of %d updates a crash had held back", resent)
        return resent

    async def close(self) -> None:
        """Send what is queued, record it as sent, stop."""
        self._stop.set()
        if self._marking is not None:
            await self._marking
        if self.replies is not None:
            await self.replies.drain()
        with contextlib.suppress(Exception):
            await self._mark_replied()

    async def _keep_marking(self) -> None:
        """Record sent replies every few hundredths of a second, so that a crash repeats only
        the replies of the last moments; while the database is away, once a second."""
        interval, failing = MARK_INTERVAL, False
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
            if not self._replied:
                continue
            try:
                await self._mark_replied()
            except Exception as exc:
                if not failing:
                    log.warning(
                        "could not record sent replies (%s); will retry",
                        exc,
                        exc_info=not database_unavailable(exc),
                    )
                interval, failing = 1.0, True
            else:
                if failing:
                    log.info("sent replies recorded again")
                interval, failing = MARK_INTERVAL, False

    async def handle(self, updates: list[Update]) -> None:
        """Handle a batch; on a handler failure, again one update at a time; when an update's
        transaction itself fails (the database is down), tell its sender to try again."""
        outcome = await self._attempt(updates)
        if outcome is True:
            return
        if len(updates) > 1:
            for update in updates:
                failure = await self._attempt([update])
                if isinstance(failure, Exception):
                    await self.tell_failure(update, failure)
        elif isinstance(outcome, Exception):
            await self.tell_failure(updates[0], outcome)
        self.last_handled = max([self.last_handled, *(u.update_id for u in updates)])

    async def skip(self, unreadable: list[Unreadable]) -> None:
        """Log unreadable updates (a line each) and journal them as handled, so that polling
        resumes after them; a journal that cannot be written is only logged (Telegram forgets
        them once a later offset confirms them anyway)."""
        for each in unreadable:
            log.warning("update %s cannot be read, skipped: %s", each.update_id, each.problem)
        ids = [each.update_id for each in unreadable if each.update_id is not None]
        if not ids:
            return
        try:
            async with self.sessions() as session:
                rows = [(update_id, None) for update_id in ids]
                await Repo(session).journal.record_handled(rows=rows, now=self.clock.now())
                await session.commit()
        except Exception as exc:
            log.warning("could not journal skipped updates %s: %s", ids, exc)
        self.last_handled = max([self.last_handled, *ids])

    async def _attempt(self, updates: list[Update]) -> bool | Exception:
        """True: handled and committed; False: a handler failed (batch rolled back); an
        exception: the transaction itself failed."""
        try:
            for _ in range(ERASURE_RETRIES):
                try:
                    return await self._batch(updates)
                except ErasedMeanwhile as exc:
                    # Rolled back: handled again, from what the erasure left.
                    log.info("updates handled again: %s", exc)
            return await self._batch(updates)
        except Exception as exc:
            ids = f"{updates[0].update_id}..{updates[-1].update_id}"
            if database_unavailable(exc):
                log.warning("database unavailable while handling updates %s: %s", ids, exc)
            else:
                log.exception("updates %s could not be handled", ids, exc_info=exc)
            metrics.HANDLER_ERRORS.inc()
            return exc

    async def _batch(self, updates: list[Update]) -> bool:
        storage = self.dp.fsm.storage
        results: list[tuple[Update, list[TelegramMethod[Any]]]] = []
        async with self.sessions() as session:
            repo = Repo(session)
            done = await repo.journal.handled_among(update_ids=[u.update_id for u in updates])
            fresh = [u for u in updates if u.update_id not in done]
            users = [user_key(u) for u in fresh]
            batch = Batch(session=session, visitors=await load_visitors(repo, users))
            batch.erasures = erasures_seen(v.account for v in batch.visitors.values())
            batch.senders = {
                u: v.account.id for u, v in batch.visitors.items() if v.account and v.account.id
            }
            if isinstance(storage, DbStorage):
                await storage.prefetch(batch, users)
            batch_token = current_batch.set(batch)
            try:
                for update in fresh:
                    buffer: list[TelegramMethod[Any]] = []
                    replies_token = current_replies.set(buffer)
                    try:
                        with log_context(update_id=update.update_id):
                            await self.dp.feed_update(self.bot, update)
                    except Exception:
                        log.exception("update %s failed", update.update_id)
                        batch.failed = True
                    finally:
                        current_replies.reset(replies_token)
                    if batch.failed and len(updates) > 1:
                        await session.rollback()
                        return False
                    results.append((update, buffer))
            finally:
                current_batch.reset(batch_token)
            if batch.failed:
                # One update, and its handler failed: drop its writes, keep its apology.
                metrics.HANDLER_ERRORS.inc()
                await session.rollback()
                batch.fsm.clear()
            elif isinstance(storage, DbStorage):
                await storage.flush(batch)
            records = [(u, dump(b)) for u, b in results if b]
            dumped = {u.update_id: json.dumps(r) for u, r in records}
            rows = [(u.update_id, dumped.get(u.update_id)) for u, _ in results]
            await repo.journal.record_handled(rows=rows, now=self.clock.now())
            if not batch.failed:
                await repo.accounts.check_unerased(seen=batch.erasures)
            with self._taking_replied() as replied:
                await repo.journal.mark_replied(update_ids=replied, now=self.clock.now())
                await session.commit()
        assert self.replies is not None, "start() first"
        for update, record in records:
            self.replies.send_records(update.update_id, record, chat_id=user_key(update))
        for update in fresh:
            metrics.UPDATES.labels(update.event_type).inc()
        if batch.checkins and not batch.failed:
            metrics.CHECKINS.inc(batch.checkins)
        self.last_handled = max([self.last_handled, *(u.update_id for u in updates)])
        if isinstance(storage, AfterCommit):
            try:
                await storage.apply(batch)
                await self._unless_erased(storage, batch)
            except Exception as exc:
                # Committed and answered; only the conversations' next steps are lost, so
                # their members are asked the previous question again.
                log.warning("conversation steps of %d updates not saved: %s", len(fresh), exc)
        return True

    async def _unless_erased(self, storage: AfterCommit, batch: Batch) -> None:
        """An erasure that waited for the batch's commit may have cleared Redis before the
        batch's steps were written there: they are cleared again when it has committed since.
        (One committed after this look clears Redis itself, once committed.)"""
        if not batch.fsm or not batch.erasures:
            return
        async with self.sessions() as session:
            try:
                await Repo(session).accounts.check_unerased(seen=batch.erasures)
            except ErasedMeanwhile as exc:
                erased = {u for u, a in batch.senders.items() if a in exc.account_ids}
                await storage.forget(batch, erased)

    async def tell_failure(self, update: Update, exc: Exception) -> None:
        """The update could not be handled: say so, in the sender's Telegram language."""
        user = getattr(update.event, "from_user", None)
        if user is None or user.is_bot:
            return
        i18n: Translator = self.dp["i18n"]
        language = language_from_telegram(user.language_code) or "zh"
        with i18n.context(), i18n.use_locale(LOCALE_OF[language]):
            if database_unavailable(exc):
                text = _(
                    "Daka cannot reach its records for a moment. Nothing you sent earlier is"
                    " lost — please send that again in a minute."
                )
            else:
                text = _("Sorry, something went wrong on our side. Please try again in a moment.")
        try:
            if update.callback_query is not None:
                await self.bot.answer_callback_query(
                    update.callback_query.id, text=text, show_alert=True
                )
            else:
                await self.bot.send_message(user.id, text)
        except Exception as exc:
            log.warning("could not tell user of update %s to retry: %s", update.update_id, exc)

    async def resend_replies(self, *, older_than: timedelta | None = None) -> int:
        """Send what an earlier run committed but did not get to send."""
        assert self.replies is not None
        before = self.clock.now() - older_than if older_than is not None else None
        async with self.sessions() as session:
            pending = await Repo(session).journal.unreplied(handled_before=before)
        for update_id, records in pending:
            self.replies.send_records(update_id, json.loads(records))
        await self.replies.drain()
        await self._mark_replied()
        return len(pending)

    async def _mark_replied(self) -> None:
        if not self._replied:
            return
        with self._taking_replied() as replied:
            async with self.sessions() as session:
                await Repo(session).journal.mark_replied(update_ids=replied, now=self.clock.now())
                await session.commit()

    @contextlib.contextmanager
    def _taking_replied(self) -> Iterator[list[int]]:
        """The updates whose replies went out since the last record of them; handed back if
        recording them fails, for the next attempt."""
        replied, self._replied[:] = list(self._replied), []
        try:
            yield replied
        except Exception:
            self._replied.extend(replied)
            raise

    async def idle(self) -> None:
        """Wait until the replies of everything handled so far have been sent."""
        assert self.replies is not None
        await self.replies.drain()


def database_url(sessions: SessionFactory) -> str | None:
    """The URL of the sessions' engine, password included (for a worker's own connection)."""
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    return None if url is None else url.render_as_string(hide_password=False)


def user_key(update: Update) -> int:
    event: Any = update.event
    user = getattr(event, "from_user", None)
    if user is not None:
        return int(user.id)
    chat = getattr(event, "chat", None)
    return int(chat.id) if chat is not None else 0
