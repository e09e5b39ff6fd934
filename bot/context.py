"""The unit of work of the update being handled, shared by the middleware and the FSM storage."""

from __future__ import annotations

from contextvars import ContextVar

from sqlmodel.ext.asyncio.session import AsyncSession

current_session: ContextVar[AsyncSession | None] = ContextVar("daka_session", default=None)
