"""Per-update middlewares: one database transaction per update, and who is writing."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.methods import (
    Response,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import Message, TelegramObject, Update, User

from domain.conversation.turn import Visitor
from domain.conversation.turn import load_visitors as load_channel_visitors
from domain.delivery import TELEGRAM
from domain.i18n import DEFAULT_LANGUAGE, LOCALE_OF, Translator, _
from domain.logcontext import bind
from handlers.telegram.context import current_batch
from handlers.telegram.errors import harmless
from handlers.telegram.i18n import language_from_telegram
from handlers.telegram.replies import current_replies
from storage.models import RoleGrant
from storage.repo import Repo

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class PrivateChatsOnly(BaseMiddleware):
    """Daka speaks with a person only in their own private chat: nothing personal may reach a
    group, and nobody but a person has anything to do here. Only a message or a button press
    from a person (not a bot, not a chat speaking as itself) in their private chat goes on to
    the database, the conversations and the handlers; that test is the whole cost for them.

    Everything else is answered here and goes no further: a command in a group (an anonymous
    admin's too) gets one line pointing to the private chat, a button pressed under a message
    in a group gets that line as its answer; every other event (other group messages, channel
    posts, edits, the bot being added to a chat, bots' messages) gets nothing."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if from_a_person_in_private(event):
            return await handler(event, data)
        assert isinstance(event, Update)
        message, query = event.message, event.callback_query
        if query is not None and not query.from_user.is_bot:
            with _speaking(data, query.from_user):
                await query.answer(await private_chat_line(data), show_alert=True)
        elif (
            message is not None
            and message.chat.type != ChatType.PRIVATE
            and not _bot_speaking(message)
            and await _command_for_us(message, data)
        ):
            with _speaking(data, message.from_user):
                await message.answer(await private_chat_line(data))
        return UNHANDLED


GROUP_ANONYMOUS_BOT = 1087968824  # the sender Telegram shows for an anonymous group admin


def from_a_person_in_private(update: TelegramObject) -> bool:
    """A message or button press from a person, in their own private chat."""
    if not isinstance(update, Update):
        return False
    if update.message is not None:
        message = update.message
        user = message.from_user
        return (
            user is not None
            and not user.is_bot
            and message.sender_chat is None
            and message.chat.type == ChatType.PRIVATE
            and message.chat.id == user.id
        )
    if update.callback_query is not None:
        query = update.callback_query
        pressed_under = query.message
        return not query.from_user.is_bot and (
            pressed_under is None  # an inline message: answered to the presser alone
            or (
                pressed_under.chat.type == ChatType.PRIVATE
                and pressed_under.chat.id == query.from_user.id
            )
        )
    return False


def _bot_speaking(message: Message) -> bool:
    """A bot wrote it (an anonymous admin shows as a bot too, but is a person)."""
    user = message.from_user
    return user is not None and user.is_bot and message.sender_chat is None


async def _command_for_us(message: Message, data: dict[str, Any]) -> bool:
    """`/word` or `/word@our_name` (not another bot's command) as text or caption."""
    text = message.text or message.caption or ""
    if not text.startswith("/"):
        return False
    name, _at, mention = text.split(maxsplit=1)[0][1:].partition("@")
    return bool(name) and (not mention or mention.lower() == (await bot_username(data)).lower())


async def bot_username(data: dict[str, Any]) -> str:
    """`BOT_USERNAME`, or the name Telegram gives (asked once per process)."""
    settings = data.get("settings")
    if settings is not None and settings.bot_username:
        return str(settings.bot_username).lstrip("@")
    bot: Bot = data["bot"]
    return (await bot.me()).username or ""


async def private_chat_line(data: dict[str, Any]) -> str:
    return _("Daka answers in a private chat only: https://t.me/{bot}").format(
        bot=await bot_username(data)
    )


@contextlib.contextmanager
def _speaking(data: dict[str, Any], user: User | None) -> Iterator[None]:
    """The sender's Telegram language (the update goes no further, to where the account's
    choice would be read)."""
    i18n: Translator = data["i18n"]
    code = user.language_code if user is not None and user.id != GROUP_ANONYMOUS_BOT else None
    language = language_from_telegram(code) or DEFAULT_LANGUAGE
    with i18n.context(), i18n.use_locale(LOCALE_OF[language]):
        yield


class DbSessionMiddleware(BaseMiddleware):
    """The update's unit of work: updates are handled in batches by `UpdateProcessor` (long
    polling and webhooks alike), sharing the batch's transaction, which the processor commits;
    a handler that fails marks the batch failed and withholds what it had said."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        batch = current_batch.get()
        if batch is None:
            raise RuntimeError(
                "updates are handled through handlers.telegram.updates.UpdateProcessor"
            )
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
    """Loads the `Visitor` once per update (prefetched for a whole batch when polling); the
    managers' gate resolves their manager scope from it (domain.conversation.managers)."""

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
                    account_id=visitor.account_id or 0,  # never stored
                    unit_id=None,
                    role="admin",
                    granted_at=org.created_at,
                )
            )
            visitor.org = visitor.org or org
        if org.id is not None:
            visitor.orgs.setdefault(org.id, org)


async def load_visitors(repo: Repo, telegram_ids: Sequence[int]) -> dict[int, Visitor]:
    """The visitors of several Telegram users, by user id (see `bot.context.load_visitors`)."""
    visitors = await load_channel_visitors(
        repo, channel=TELEGRAM, external_ids=[str(tid) for tid in telegram_ids]
    )
    return {int(eid): visitor for eid, visitor in visitors.items()}


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
            if harmless(method.__api_method__, exc.message):
                log.info("ignored %s: %s", type(method).__name__, exc.message)
                return cast(Response[TelegramType], Response[bool](ok=True, result=True))
            raise
