"""Enrolment: invite link → consent → member id and name checked against the roster."""

from __future__ import annotations

import html
from datetime import datetime

from aiogram import F, Router
from aiogram.filters import CommandObject, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyKeyboardRemove,
)

from domain import enrolment
from domain.clock import Clock, zone
from domain.conversation.turn import Visitor
from domain.enrolment import InviteProblem
from domain.i18n import LOCALE_OF, Translator, _
from domain.i18n import current as translator
from handlers.telegram.common import manager_commands
from handlers.telegram.i18n import language_from_telegram
from handlers.telegram.keyboards import ConsentCb, menu_keyboard
from storage.models import TELEGRAM, Account, Invite, Organisation
from storage.repo import Repo

router = Router(name="enrol")


class Enrol(StatesGroup):
    consent = State()
    member_id = State()
    name = State()


def problem_text(problem: InviteProblem) -> str:
    return {
        InviteProblem.MALFORMED: _(
            "This link is not a valid invite. Please open the exact link you were sent."
        ),
        InviteProblem.UNKNOWN: _(
            "This invite does not exist. Please check the link, or ask for a new one."
        ),
        InviteProblem.EXPIRED: _("This invite has expired. Please ask for a new link."),
        InviteProblem.REVOKED: _("This invite was withdrawn. Please ask for a new link."),
        InviteProblem.USED_UP: _(
            "This invite has already been used as many times as allowed. "
            "Please ask for a new link."
        ),
    }[problem]


async def check_invite(repo: Repo, code: str, now: datetime) -> Invite | InviteProblem:
    """The usable invite behind `code`, or why it cannot be used."""
    if not enrolment.code_is_well_formed(code):
        return InviteProblem.MALFORMED
    invite = await repo.invites.get(code=code)
    if invite is None:
        return InviteProblem.UNKNOWN
    problem = enrolment.invite_problem(
        expires_at=invite.expires_at,
        revoked_at=invite.revoked_at,
        max_uses=invite.max_uses,
        uses=invite.uses,
        now=now,
    )
    return problem if problem is not None else invite


def consent_text(org: Organisation, role: str) -> str:
    what = (
        _(
            "• your location when you check in, and your answers to the daily questions "
            "(such as temperature and symptoms), and a photo if you send one;\n"
            "• your member id and name, to match you with the roster;\n"
            "• your Telegram id, to send you reminders."
        )
        if role == "member"
        else _("• your Telegram id and name, and what you look at, for the audit trail.")
    )
    return _(
        "<b>{org}: daily check-in — how we use your information</b>\n\n"
        "<b>What we collect</b>\n{what}\n\n"
        "<b>Why</b>\nFor the daily health and whereabouts report of your school or village.\n\n"
        "<b>Who sees it</b>\nYou, and the counselors or cadres responsible for your class or "
        "village and their superiors. Nobody else.\n\n"
        "<b>How long</b>\nExact coordinates and photos are deleted after {days} days; "
        "the daily status is kept for the records.\n\n"
        "You can ask for everything stored about you at any time. Do you agree?"
    ).format(org=html.escape(org.name), what=what, days=org.retain_days)


def consent_keyboard(code: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("✅ I agree"), callback_data=ConsentCb(accept=True, code=code).pack()
                ),
                InlineKeyboardButton(
                    text=_("❌ I decline"), callback_data=ConsentCb(accept=False, code=code).pack()
                ),
            ]
        ]
    )


def lock_text(until: datetime, tz: str) -> str:
    return _("Too many wrong answers. Please try again after {time}.").format(
        time=until.astimezone(zone(tz)).strftime("%H:%M")
    )


@router.message(CommandStart(deep_link=True))
async def on_start_with_code(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
    i18n: Translator,
) -> None:
    now = clock.now()
    found = await check_invite(repo, (command.args or "").strip(), now)
    if isinstance(found, InviteProblem):
        await message.answer(problem_text(found))
        return
    org = await repo.orgs.get(org_id=found.org_id)
    account = await visitor.ensure_account(repo, now)
    telegram_language = message.from_user.language_code if message.from_user else None
    if account.language is None and language_from_telegram(telegram_language) is None:
        # Telegram's language is not one we speak: the organisation's default applies.
        account.language = org.language
    with i18n.use_locale(LOCALE_OF.get(account.language or "", i18n.current_locale)):
        await offer_consent(message, state, found, org, account, visitor, now)


async def offer_consent(
    message: Message,
    state: FSMContext,
    found: Invite,
    org: Organisation,
    account: Account,
    visitor: Visitor,
    now: datetime,
) -> None:
    if enrolment.locked(account.locked_until, now):
        assert account.locked_until is not None
        await message.answer(lock_text(account.locked_until, org.timezone))
        return
    if found.role == "member":
        mine = next((m for m in visitor.members if m.org_id == org.id), None)
        if mine is not None:
            await state.clear()
            await message.answer(
                _(
                    "You are already enrolled in {org} as {name}. Send /checkin to check in."
                ).format(org=html.escape(org.name), name=html.escape(mine.name)),
                reply_markup=menu_keyboard(),
            )
            return
    await state.clear()
    await state.set_state(Enrol.consent)
    await state.update_data(code=found.code)
    await message.answer(consent_text(org, found.role), reply_markup=consent_keyboard(found.code))


@router.message(CommandStart(deep_link=False), StateFilter(None))
async def on_plain_start(message: Message, visitor: Visitor) -> None:
    if visitor.member is not None:
        await message.answer(
            _("Welcome back, {name}! Send /checkin to check in for today.").format(
                name=html.escape(visitor.member.name)
            ),
            reply_markup=menu_keyboard(),
        )
    elif visitor.roles:
        await message.answer(_("Welcome back! Send /help to see what you can do."))
    else:
        await message.answer(
            _(
                "Hello! I am the daily check-in bot. To enrol, open the invite link "
                "from your counselor or village cadre."
            )
        )


@router.callback_query(ConsentCb.filter(), StateFilter(Enrol.consent))
async def on_consent(
    query: CallbackQuery,
    callback_data: ConsentCb,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
) -> None:
    data = await state.get_data()
    if data.get("code") != callback_data.code:
        await query.answer(_("This button has expired."), show_alert=True)
        return
    now = clock.now()
    found = await check_invite(repo, callback_data.code, now)
    message = query.message if isinstance(query.message, Message) else None
    await query.answer()
    if isinstance(found, InviteProblem):
        await state.clear()
        if message:
            await message.answer(problem_text(found))
        return
    await repo.accounts.record_consent(
        account_id=(await visitor.ensure_account(repo, now)).id or 0,
        org_id=found.org_id,
        version=enrolment.CONSENT_VERSION,
        accepted=callback_data.accept,
        now=now,
    )
    if message:
        await message.edit_reply_markup(reply_markup=None)
    if not callback_data.accept:
        await state.clear()
        if message:
            await message.answer(
                _(
                    "Understood. Nothing about you has been stored. If you change your mind, "
                    "open the invite link again."
                )
            )
        return
    if found.role in ("manager", "admin"):
        await grant_role(query, state, repo, found, now)
        return
    await state.set_state(Enrol.member_id)
    if message:
        await message.answer(
            _("Thank you. Please send your member id (student or resident number)."),
            reply_markup=ReplyKeyboardRemove(),
        )


async def grant_role(
    query: CallbackQuery, state: FSMContext, repo: Repo, invite: Invite, now: datetime
) -> None:
    await state.clear()
    message = query.message if isinstance(query.message, Message) else None
    if not await repo.invites.use(code=invite.code):
        if message:
            await message.answer(problem_text(InviteProblem.USED_UP))
        return
    account = await repo.accounts.ensure(
        channel=TELEGRAM, external_id=str(query.from_user.id), now=now
    )
    await repo.roles.grant(
        org_id=invite.org_id,
        account_id=account.id or 0,
        unit_id=invite.unit_id,
        role=invite.role,
        now=now,
    )
    scope = _("the whole organisation")
    if invite.unit_id is not None:
        scope = html.escape((await repo.units.get(unit_id=invite.unit_id)).name_path)
    await repo.audit.log(
        org_id=invite.org_id,
        actor=str(query.from_user.id),
        action=f"role.grant.{invite.role}",
        subject=scope,
        detail=f"invite {invite.code[:6]}…",
        now=now,
    )
    text = (
        _("You are now an administrator of {scope}.")
        if invite.role == "admin"
        else _("You are now a manager of {scope}.")
    )
    if message:
        await message.answer(text.format(scope=scope))
    await query.bot.set_my_commands(  # type: ignore[union-attr]
        manager_commands(), scope=BotCommandScopeChat(chat_id=query.from_user.id)
    )
    i18n = translator()
    account.menu = f"manager:{i18n.current_locale}" if i18n is not None else None


@router.message(StateFilter(Enrol.member_id), F.text, ~F.text.startswith("/"))
async def on_member_id(message: Message, state: FSMContext) -> None:
    member_id = enrolment.normalise_member_id(message.text or "")
    if not member_id or len(member_id) > 64:
        await message.answer(_("Please send your member id as text, for example 2024010203."))
        return
    await state.update_data(member_id=member_id)
    await state.set_state(Enrol.name)
    await message.answer(_("Now send your full name, as it appears on the roster."))


@router.message(StateFilter(Enrol.name), F.text, ~F.text.startswith("/"))
async def on_name(
    message: Message,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor,
) -> None:
    now = clock.now()
    data = await state.get_data()
    found = await check_invite(repo, str(data.get("code", "")), now)
    if isinstance(found, InviteProblem):
        await state.clear()
        await message.answer(problem_text(found))
        return
    org = await repo.orgs.get(org_id=found.org_id)
    account = await visitor.ensure_account(repo, now)
    if enrolment.locked(account.locked_until, now):
        assert account.locked_until is not None
        await state.clear()
        await message.answer(lock_text(account.locked_until, org.timezone))
        return
    external_id = str(data.get("member_id", ""))
    member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
    in_scope = member is not None and member.active
    if member is not None and in_scope and found.unit_id is not None:
        unit = await repo.units.get(unit_id=member.unit_id)
        invite_unit = await repo.units.get(unit_id=found.unit_id)
        in_scope = unit.path.startswith(invite_unit.path)
    if (
        member is None
        or not in_scope
        or not enrolment.names_match(member.name, message.text or "")
    ):
        await repo.accounts.record_attempt(
            account_id=account.id or 0,
            org_id=org.id or 0,
            external_id=external_id,
            outcome="mismatch",
            now=now,
        )
        account.failed_attempts, account.locked_until = enrolment.after_failure(
            account.failed_attempts, now
        )
        if account.locked_until is not None:
            await state.clear()
            await message.answer(lock_text(account.locked_until, org.timezone))
            return
        await state.set_state(Enrol.member_id)
        await message.answer(
            _(
                "That member id and name do not match our roster. Please check both and send "
                "your member id again."
            )
        )
        return
    if member.account_id is not None and member.account_id != account.id:
        await repo.accounts.record_attempt(
            account_id=account.id or 0,
            org_id=org.id or 0,
            external_id=external_id,
            outcome="taken",
            now=now,
        )
        await repo.audit.log(
            org_id=org.id,
            actor=str(visitor.telegram_id),
            action="enrol.refused.taken",
            subject=external_id,
            now=now,
        )
        await state.clear()
        await message.answer(
            _(
                "This member id is already linked to another Telegram account. If that is not "
                "you, please contact your counselor or village cadre."
            )
        )
        return
    if not await repo.invites.use(code=found.code):
        await state.clear()
        await message.answer(problem_text(InviteProblem.USED_UP))
        return
    await repo.members.bind(member=member, account_id=account.id or 0, now=now)
    account.failed_attempts, account.locked_until = 0, None
    await repo.accounts.record_attempt(
        account_id=account.id or 0,
        org_id=org.id or 0,
        external_id=external_id,
        outcome="enrolled",
        now=now,
    )
    await state.clear()
    await message.answer(
        _(
            "Welcome, {name}! You are enrolled in {org}. Check in once a day with the button "
            "below or /checkin."
        ).format(name=html.escape(member.name), org=html.escape(org.name)),
        reply_markup=menu_keyboard(),
    )


@router.message(StateFilter(Enrol.member_id, Enrol.name))
async def on_enrol_other(message: Message, state: FSMContext) -> None:
    """Stickers, photos, commands: say what is expected and ask the same question."""
    if await state.get_state() == Enrol.member_id.state:
        await message.answer(
            _("I need your member id as text. Send it, or /cancel to stop enrolling.")
        )
    else:
        await message.answer(_("I need your full name as text. Send it, or /cancel to stop."))


@router.message(StateFilter(Enrol.consent))
async def on_consent_pending(message: Message, state: FSMContext, repo: Repo) -> None:
    data = await state.get_data()
    invite = await repo.invites.get(code=str(data.get("code", "")))
    if invite is None:
        await state.clear()
        await message.answer(problem_text(InviteProblem.UNKNOWN))
        return
    org = await repo.orgs.get(org_id=invite.org_id)
    await message.answer(_("Please answer the consent notice first:"))
    await message.answer(
        consent_text(org, invite.role), reply_markup=consent_keyboard(invite.code)
    )
