"""What is Telegram's own around the conversation: the command menus (installed, and kept in
step with each person's roles and language) and the error handler. The commands themselves are
the core's (`domain.conversation.dispatch`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    CallbackQuery,
    ErrorEvent,
    Message,
    TelegramObject,
)

from domain.clock import Clock
from domain.conversation.turn import Visitor
from domain.i18n import LOCALE_OF, Translator, _
from domain.i18n import current as translator
from handlers.telegram.i18n import language_from_telegram
from storage.repo import Repo

log = logging.getLogger(__name__)

router = Router(name="common")  # the error handler's


def member_commands() -> list[BotCommand]:
    """The command menu members see, in the current language."""
    return [
        BotCommand(command="checkin", description=_("Check in for today")),
        BotCommand(command="today", description=_("Did I check in today?")),
        BotCommand(command="history", description=_("My last 14 days")),
        BotCommand(command="mydata", description=_("Everything stored about me")),
        BotCommand(command="withdraw", description=_("Withdraw my consent")),
        BotCommand(command="language", description=_("Change language")),
        BotCommand(command="help", description=_("How to use this bot")),
        BotCommand(command="cancel", description=_("Cancel the current step")),
    ]


def manager_commands() -> list[BotCommand]:
    """What counselors, cadres and administrators see in their menu."""
    return [
        BotCommand(command="summary", description=_("Today's figures of my scope")),
        BotCommand(command="missing", description=_("Who has not checked in")),
        BotCommand(command="abnormal", description=_("Abnormal check-ins")),
        BotCommand(command="member", description=_("One member's last 14 days")),
        BotCommand(command="export", description=_("Spreadsheet of my scope")),
        BotCommand(command="where", description=_("Where my scope checked in from")),
        BotCommand(command="trend", description=_("Reporting trend of my scope")),
        BotCommand(command="excuse", description=_("Excuse a member")),
        BotCommand(command="roster", description=_("Upload a roster")),
        BotCommand(command="schedule", description=_("Reminder and report times")),
        *member_commands(),
    ]


async def install_commands(bot: Bot) -> None:
    """Register the command menu in Chinese (default) and English."""
    i18n = translator()
    if i18n is None:
        from domain.i18n import create_translator

        i18n = create_translator()
    with i18n.context():
        for language, code in (("zh", None), ("en", "en")):
            with i18n.use_locale(LOCALE_OF[language]):
                await bot.set_my_commands(
                    member_commands(), scope=BotCommandScopeAllPrivateChats(), language_code=code
                )


class CommandMenu(BaseMiddleware):
    """Keeps a person's command menu in step with their roles and language, whoever changed
    them: an invite, `daka role grant` / `revoke` from the command line, or /language. The
    menu is set on their next message or button press (the Bot API has no other moment)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        visitor: Visitor | None = data.get("visitor")
        i18n = translator()
        if visitor is not None and i18n is not None and isinstance(event, Message | CallbackQuery):
            kind = "manager" if visitor.roles else "member"
            want = f"{kind}:{i18n.current_locale}"
            account = visitor.account
            had = account.menu if account is not None else None
            if want != had and (kind == "manager" or had is not None):
                repo: Repo = data["repo"]
                clock: Clock = data["clock"]
                if account is None:
                    account = await visitor.ensure_account(repo, clock.now())
                commands = manager_commands() if kind == "manager" else member_commands()
                bot: Bot = data["bot"]
                await bot.set_my_commands(
                    commands, scope=BotCommandScopeChat(chat_id=visitor.telegram_id)
                )
                account.menu = want
        return await handler(event, data)


@router.errors()
async def on_error(event: ErrorEvent, i18n: Translator) -> None:
    """Nobody sees a traceback: log it, apologise in the user's language."""
    log.exception("handler failed on update %s", event.update.update_id, exc_info=event.exception)
    update = event.update
    user = None
    if update.message is not None:
        user = update.message.from_user
    elif update.callback_query is not None:
        user = update.callback_query.from_user
    if user is None:
        return
    language = language_from_telegram(user.language_code) or "zh"
    with i18n.context(), i18n.use_locale(LOCALE_OF[language]):
        text = _("Sorry, something went wrong on our side. Please try again in a moment.")
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(text, show_alert=True)
            else:
                await update.bot.send_message(user.id, text)  # type: ignore[union-attr]
        except Exception:
            log.exception("could not tell user %s about the error", user.id)
