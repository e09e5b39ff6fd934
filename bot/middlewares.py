"""Per-update middlewares: one database transaction per update, and who is writing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
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
from aiogram.types import TelegramObject, User

from bot.context import Visitor, current_batch
from bot.logs import bind
from bot.replies import current_replies
from storage.models import RoleGrant
from storage.repo import Repo
from storage.scope import resolve_scope

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """The update's unit of work: updates are handled in batches by `UpdateProcessor` (long
    polling and webhooks alike), sharing the batch's transaction, which the processor commits;
    a handler that fails marks the batch failed and withholds what it had said."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        batch = current_batch.get()
        if batch is None:
            raise RuntimeError("updates are handled through bot.updates.UpdateProcessor")
        data["repo"] = Repo(batch.session)
        try:
            return await handler(event, data)
        except Exception:
            # The processor rolls the batch back and handles its updates one by one; what this
            # handler already said must not go out, the apology of the error handler will.
            batch.failed = True
            batch.fsm.clear()
            replies = current_replies.get()
            if replies is not None:
                replies.clear()
            raise


class VisitorMiddleware(BaseMiddleware):
    """Loads the `Visitor` once per update (prefetched for a whole batch when polling), and
    resolves their manager `scope` from it (None for members; the managers' routers refuse
    them, see handlers.gate)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        repo: Repo | None = data.get("repo")
        if user is not None and repo is not None and not user.is_bot:
            batch = current_batch.get()
            visitor = batch.visitors.pop(user.id, None) if batch is not None else None
            if visitor is None:
                visitor = (await load_visitors(repo, [user.id]))[user.id]
            for member in visitor.members:
                if member.unreachable_since is not None:
                    member.unreachable_since = None  # they wrote to us: reachable again
            settings = data.get("settings")
            if settings is not None and user.id in settings.admin_ids:
                await add_super_admin_roles(repo, visitor)
            data["visitor"] = visitor
            account = visitor.account
            data["scope"] = resolve_scope(
                visitor.roles, visitor.orgs, account.org_id if account is not None else None
            )
            if visitor.org is not None:
                # For the rest of the update, aiogram's own "is handled" record included (the
                # update's `log_context` undoes it when the update is done).
                bind(org=visitor.org.slug)
        return await handler(event, data)


async def add_super_admin_roles(repo: Repo, visitor: Visitor) -> None:
    """`ADMIN_IDS` are administrators of every organisation, without a grant in the database
    (the roles are built here, never stored)."""
    held = {g.org_id for g in visitor.roles if g.role == "admin" and g.unit_id is None}
    for org in await repo.orgs.every():
        if org.id is not None and org.id not in held:
            visitor.roles.append(
                RoleGrant(
                    org_id=org.id,
                    telegram_id=visitor.telegram_id,
                    unit_id=None,
                    role="admin",
                    granted_at=org.created_at,
                )
            )
            visitor.org = visitor.org or org
        if org.id is not None:
            visitor.orgs.setdefault(org.id, org)


async def load_visitors(repo: Repo, telegram_ids: Sequence[int]) -> dict[int, Visitor]:
    """Accounts, enrolments, roles and organisations of several users in three queries."""
    ids = list(set(telegram_ids))
    visitors = {tid: Visitor(telegram_id=tid, account=None) for tid in ids}
    for account in await repo.accounts.many(telegram_ids=ids):
        visitors[account.telegram_id].account = account
    for member, org in await repo.members.enrolments(telegram_ids=ids):
        assert member.telegram_id is not None
        visitor = visitors[member.telegram_id]
        visitor.members.append(member)
        visitor.org = visitor.org or org
        visitor.orgs.setdefault(member.org_id, org)
    for grant, org in await repo.roles.active_many(telegram_ids=ids):
        visitor = visitors[grant.telegram_id]
        visitor.roles.append(grant)
        visitor.org = visitor.org or org
        visitor.orgs.setdefault(grant.org_id, org)
    return visitors


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
