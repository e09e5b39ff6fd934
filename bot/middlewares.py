"""Per-update middlewares: one database transaction per update, and who is writing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    Response,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update, User

from bot.context import current_session
from domain.clock import Clock
from storage.db import SessionFactory
from storage.models import Account, Member, RoleGrant
from storage.repo import Repo

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """Opens the update's unit of work: the handler's writes, its FSM step and the journal's
    "handled" mark commit together, or not at all. An update already handled is skipped."""

    def __init__(self, sessions: SessionFactory, clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        async with self.sessions() as session:
            repo = Repo(session)
            if await repo.journal.is_handled(update_id=event.update_id):
                log.info("update %s was handled before; skipped", event.update_id)
                return None
            token = current_session.set(session)
            try:
                data["repo"] = repo
                result = await handler(event, data)
                await repo.journal.mark_handled(update_id=event.update_id, now=self.clock.now())
                await session.commit()
                return result
            except Exception:
                await session.rollback()
                await self._give_up(event.update_id)
                raise
            finally:
                current_session.reset(token)

    async def _give_up(self, update_id: int) -> None:
        """A handler that raised would raise again on replay: mark it handled, keep going."""
        try:
            async with self.sessions() as session:
                await Repo(session).journal.mark_handled(update_id=update_id, now=self.clock.now())
                await session.commit()
        except Exception:
            log.exception("could not mark update %s as handled", update_id)


@dataclass
class Visitor:
    """Who sent the update, as Daka knows them: account, enrolments, roles."""

    telegram_id: int
    account: Account | None
    members: list[Member] = field(default_factory=list)
    roles: list[RoleGrant] = field(default_factory=list)
    org_language: str | None = None

    @property
    def member(self) -> Member | None:
        """The enrolment used for checking in (the first, when someone has several)."""
        return self.members[0] if self.members else None


class VisitorMiddleware(BaseMiddleware):
    """Loads the `Visitor` once per update for the handlers and the language choice."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        repo: Repo | None = data.get("repo")
        if user is not None and repo is not None and not user.is_bot:
            members = list(await repo.members.by_telegram(telegram_id=user.id))
            for member in members:
                if member.unreachable_since is not None:
                    member.unreachable_since = None  # they wrote to us: reachable again
            roles = list(await repo.roles.active(telegram_id=user.id))
            org_id = members[0].org_id if members else (roles[0].org_id if roles else None)
            language = (await repo.orgs.get(org_id=org_id)).language if org_id else None
            data["visitor"] = Visitor(
                telegram_id=user.id,
                account=await repo.accounts.get(telegram_id=user.id),
                members=members,
                roles=roles,
                org_language=language,
            )
        return await handler(event, data)


BENIGN_ERRORS = (
    "message is not modified",
    "query is too old",
    "query id is invalid",
    "message to edit not found",
    "message to delete not found",
    "message can't be edited",
)
SOFT_METHODS = (
    AnswerCallbackQuery,
    EditMessageText,
    EditMessageReplyMarkup,
    EditMessageCaption,
    DeleteMessage,
)


class TolerantRequests(BaseRequestMiddleware):
    """Cosmetic calls that fail for harmless reasons do not fail the update.

    After a crash an update is handled again: its button press is too old to answer and the
    edit it made is already there. Neither must stop the member's answer from being recorded."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if isinstance(method, SOFT_METHODS) and any(
                text in exc.message.lower() for text in BENIGN_ERRORS
            ):
                log.info("ignored %s: %s", type(method).__name__, exc.message)
                return cast(Response[TelegramType], Response[bool](ok=True, result=True))
            raise
