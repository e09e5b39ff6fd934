"""Commands for everybody (/help, /language, /cancel), the command menu, errors and fallbacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    CallbackQuery,
    ErrorEvent,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
    TelegramObject,
)

from domain.clock import Clock
from domain.conversation.turn import Visitor
from domain.i18n import LOCALE_OF, Translator, _
from domain.i18n import current as translator
from handlers.telegram.i18n import language_from_telegram
from handlers.telegram.keyboards import LanguageCb, menu_keyboard
from storage.models import TELEGRAM, Member, Organisation
from storage.repo import Repo

log = logging.getLogger(__name__)

commands_router = Router(name="common")
fallback_router = Router(name="fallback")


async def enrolment(repo: Repo, visitor: Visitor | None) -> tuple[Member, Organisation] | None:
    """The enrolment used for checking in and its organisation (prefetched with the visitor
    when it can be); None when the sender is not enrolled."""
    if visitor is None or visitor.member is None:
        return None
    member = visitor.member
    org = visitor.org
    if org is None or org.id != member.org_id:
        org = await repo.orgs.get(org_id=member.org_id)
    return member, org


def member_commands() -> list[BotCommand]:
    """The command menu members see, in the current language."""
    return [
        BotCommand(command="checkin", description=_("Check in for today")),
        BotCommand(command="today", description=_("Did I check in today?")),
        BotCommand(command="history", description=_("My last 14 days")),
        BotCommand(command="mydata", description=_("Everything stored about me")),
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


def help_text(visitor: Visitor | None) -> str:
    lines = [
        _("<b>Daka daily check-in</b>"),
        "",
        _("/checkin — check in for today (or change today's answers)"),
        _("/today — what I reported today"),
        _("/history — my last 14 days"),
        _("/mydata — everything stored about you, and who can read it"),
        _("/language — 中文 / English"),
        _("/cancel — stop the current step"),
    ]
    if visitor is not None and visitor.roles:
        lines += [
            "",
            _("/summary [date] — figures of your scope, unit by unit"),
            _("/missing [date] — who has not checked in, with a nudge button"),
            _("/abnormal [date] — abnormal check-ins"),
            _("/member ID — one member's last 14 days"),
            _("/export [csv] [date | from to] — a spreadsheet of your scope"),
            _("/where [date] — where your scope checked in from"),
            _("/trend [days] — a chart of the reporting rate and abnormal count"),
            _("/excuse ID FROM TO REASON — excuse a member (leave, sick)"),
            _("/roster — upload a roster file for your scope"),
            _("/schedule — reminder times, cutoff and report time of your scope"),
        ]
    if visitor is None or not (visitor.members or visitor.roles):
        lines += ["", _("You are not enrolled yet: open the invite link you were given.")]
    return "\n".join(lines)


@commands_router.message(Command("help"), StateFilter(None))
async def on_help(message: Message, visitor: Visitor | None = None) -> None:
    await message.answer(help_text(visitor))


@commands_router.message(Command("cancel"))
async def on_cancel(message: Message, state: FSMContext, visitor: Visitor | None = None) -> None:
    if await state.get_state() is None:
        await message.answer(_("There is nothing to cancel."))
        return
    await state.clear()
    enrolled = visitor is not None and visitor.member is not None
    await message.answer(
        _("Cancelled. Nothing was recorded."),
        reply_markup=menu_keyboard() if enrolled else ReplyKeyboardRemove(),
    )


@commands_router.message(Command("language"), StateFilter(None))
async def on_language(message: Message) -> None:
    await message.answer(
        _("Choose your language:"),
        reply_markup=InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(
                        text="中文", callback_data=LanguageCb(language="zh").pack()
                    ),
                    InlineKeyboardButton(
                        text="English", callback_data=LanguageCb(language="en").pack()
                    ),
                ]
            ]
        ),
    )


@commands_router.callback_query(LanguageCb.filter())
async def on_language_chosen(
    query: CallbackQuery,
    callback_data: LanguageCb,
    repo: Repo,
    clock: Clock,
    i18n: Translator,
    visitor: Visitor | None = None,
) -> None:
    if callback_data.language not in LOCALE_OF:
        await query.answer(_("This button has expired."))
        return
    account = await repo.accounts.ensure(
        channel=TELEGRAM, external_id=str(query.from_user.id), now=clock.now()
    )
    account.language = callback_data.language
    await repo.session.flush()
    with i18n.use_locale(LOCALE_OF[callback_data.language]):
        await query.answer()
        enrolled = visitor is not None and visitor.member is not None
        if isinstance(query.message, Message):
            await query.message.edit_text(_("Language set to English."))
        await query.bot.send_message(  # type: ignore[union-attr]
            query.from_user.id,
            help_text(visitor),
            reply_markup=menu_keyboard() if enrolled else None,
        )


@fallback_router.callback_query()
async def on_stale_button(query: CallbackQuery) -> None:
    """A press that no handler claimed: an old message's button, or forged data."""
    await query.answer(
        _("This button has expired. Send /checkin to start again."), show_alert=True
    )


@fallback_router.message(F.text.startswith("/"))
async def on_unknown_command(message: Message) -> None:
    await message.answer(_("I don't know that command. Send /help to see what I can do."))


@fallback_router.message()
async def on_anything_else(message: Message, visitor: Visitor | None = None) -> None:
    if visitor is None or visitor.member is None:
        await message.answer(
            _("Hello! To start, open the invite link from your counselor or village cadre.")
        )
        return
    await message.answer(
        _("Send /checkin to check in, or /help to see what I can do."),
        reply_markup=menu_keyboard(),
    )


@commands_router.errors()
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
