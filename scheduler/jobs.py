"""Housekeeping jobs; reminders and reports join them as the scheduler grows."""

from __future__ import annotations

import logging
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from domain.clock import Clock
from storage.db import SessionFactory
from storage.repo import Repo

log = logging.getLogger(__name__)

JOURNAL_KEEP = timedelta(days=2)


async def prune_journal(sessions: SessionFactory, clock: Clock) -> int:
    """Drop handled updates older than two days; the journal is a crash buffer, not an archive."""
    async with sessions() as session:
        removed = await Repo(session).journal.prune(before=clock.now() - JOURNAL_KEEP)
        await session.commit()
    log.info("journal pruned: %d handled updates removed", removed)
    return removed


def create_scheduler(sessions: SessionFactory, clock: Clock) -> AsyncIOScheduler:
    """The in-process scheduler `daka run` starts beside polling."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        prune_journal,
        "interval",
        hours=1,
        args=[sessions, clock],
        id="prune-journal",
        max_instances=1,
        coalesce=True,
    )
    return scheduler
