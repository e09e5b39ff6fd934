"""The daily check-in conversation: one question at a time, a summary, confirm or edit.

The draft lives in FSM data (durable: database or Redis), so it survives a restart."""

from __future__ import annotations

import html
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)

from domain import forms
from domain.checkin import GEOFENCE_REASON, derive
from domain.clock import Clock, local_day, zone
from domain.conversation.turn import Visitor
from domain.forms import AnswerError, Form, Question
from domain.geo import Geofence, Place
from domain.i18n import Translator, _, current_language
from handlers.telegram.common import enrolment
from handlers.telegram.context import note_checkin
from handlers.telegram.keyboards import (
    CHECKIN_BUTTON,
    AnswerCb,
    StartCheckInCb,
    SummaryCb,
    menu_keyboard,
)
from storage.letters import alert_letters
from storage.models import Member, Organisation
from storage.repo import Repo, Submission
from storage.schedules import OutboxRepo

router = Router(name="checkin")

SKIP = "__skip"
DONE = "__done"
YES = "__yes"
NO = "__no"


class CheckInForm(StatesGroup):
    answering = State()
    summary = State()


def error_text(error: AnswerError, q: Question) -> str:
    """The member-facing explanation of a bad answer."""
    p = error.params
    texts: dict[str, Callable[[], str]] = {
        "not_a_number": lambda: _("That is not a number. Please send a number, like 36.5."),
        "too_low": lambda: _("That is too low. Please send a number from {min} to {max}."),
        "too_high": lambda: _("That is too high. Please send a number from {min} to {max}."),
        "too_many_decimals": lambda: _("Please use at most {decimals} decimal place(s)."),
        "empty": lambda: _("The answer is empty. Please type it."),
        "too_long": lambda: _("That is too long: at most {max_length} characters, please."),
        "unknown_option": lambda: _("Please choose one of the buttons."),
        "required": lambda: _("Please choose at least one option."),
        "location_out_of_range": lambda: _(
            "That location is not a place on Earth. Please share your current location"
            " with the button below."
        ),
    }
    make = texts.get(error.code, lambda: _("I could not use that answer. Please try again."))
    values = {k: _fmt(v) for k, v in p.items()}
    return make().format(**{"min": "", "max": "", "decimals": "", "max_length": "", **values})


def _fmt(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


def org_geofence(org: Organisation) -> Geofence | None:
    if org.geofence_lat is None or org.geofence_lon is None or not org.geofence_radius_m:
        return None
    return Geofence(org.geofence_lat, org.geofence_lon, org.geofence_radius_m)


class Draft:
    """Typed access to the FSM data of a check-in in progress."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def new(cls, *, day: date, form: Form, member_id: int) -> Draft:
        return cls(
            {
                "draft": secrets.token_hex(4),
                "day": day.isoformat(),
                "form": form.name,
                "member": member_id,
                "q": form.questions[0].id,
                "answers": {},
                "selected": [],
                "follow_up": False,
                "editing": False,
            }
        )

    @property
    def id(self) -> str:
        return str(self.data["draft"])

    @property
    def day(self) -> date:
        return date.fromisoformat(self.data["day"])

    @property
    def qid(self) -> str:
        return str(self.data["q"])

    @property
    def answers(self) -> dict[str, Any]:
        answers: dict[str, Any] = self.data.setdefault("answers", {})
        return answers


async def save(state: FSMContext, draft: Draft) -> None:
    await state.set_data(draft.data)


def question_keyboard(
    q: Question, draft: Draft, lang: str
) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None:
    def button(text: str, value: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=text, callback_data=AnswerCb(draft=draft.id, q=q.id, value=value).pack()
        )

    skip_row = [[button(_("⏭ Skip"), SKIP)]] if not q.required else []
    if q.kind == "location":
        share = [[KeyboardButton(text=_("📍 Send my location"), request_location=True)]]
        return ReplyKeyboardMarkup(keyboard=share, resize_keyboard=True, one_time_keyboard=True)
    if q.kind == "choice":
        return InlineKeyboardMarkup(
            inline_keyboard=[[button(o.label(lang), o.id)] for o in q.options] + skip_row
        )
    if q.kind == "multi":
        selected = set(draft.data.get("selected", []))
        rows = [
            [button(("☑️ " if o.id in selected else "⬜ ") + o.label(lang), o.id)]
            for o in q.options
        ]
        rows.append([button(_("Done ✔"), DONE)])
        return InlineKeyboardMarkup(inline_keyboard=rows)
    if q.kind == "yesno" and not draft.data.get("follow_up"):
        return InlineKeyboardMarkup(
            inline_keyboard=[[button(_("Yes"), YES), button(_("No"), NO)], *skip_row]
        )
    if skip_row:
        return InlineKeyboardMarkup(inline_keyboard=skip_row)
    return None


def question_text(form: Form, q: Question, draft: Draft, lang: str) -> str:
    step = f"({form.index(q.id) + 1}/{len(form.questions)}) "
    if q.kind == "yesno" and draft.data.get("follow_up"):
        return step + html.escape(q.follow_up_prompt(lang) or "")
    text = step + html.escape(q.prompt(lang))
    if q.kind == "number" and q.min is not None and q.max is not None:
        unit = f" {q.unit}" if q.unit else ""
        text += "\n" + _("Send a number from {min} to {max}{unit}.").format(
            min=_fmt(q.min), max=_fmt(q.max), unit=unit
        )
    elif q.kind == "multi":
        text += "\n" + _("Tap every option that applies, then Done.")
    elif q.kind == "location":
        text += "\n" + _("Tap the button below to share where you are now.")
    elif q.kind == "photo":
        text += "\n" + _("Send a photo taken now (not forwarded).")
    return text


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None
Resolve = Callable[[float, float], Place | None]


def with_header(header: str | None, text: str) -> str:
    return f"{header}\n\n{text}" if header else text


def summary_text(form: Form, draft: Draft, lang: str, reasons: list[str]) -> str:
    lines = [_("<b>Please check your answers for {day}:</b>").format(day=draft.day.isoformat())]
    for q in form.questions:
        value = draft.answers.get(q.id)
        mark = " ⚠️" if q.id in reasons else ""
        shown = html.escape(forms.format_answer(q, value, lang))
        lines.append(f"• {html.escape(q.label(lang))}: {shown}{mark}")
    if GEOFENCE_REASON in reasons:
        lines.append(_("⚠️ This location is outside your organisation's area."))
    return "\n".join(lines)


def summary_keyboard(draft: Draft) -> InlineKeyboardMarkup:
    def button(text: str, action: str) -> InlineKeyboardButton:
        return InlineKeyboardButton(
            text=text, callback_data=SummaryCb(draft=draft.id, action=action).pack()
        )

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(_("✅ Confirm"), "confirm")],
            [button(_("✏️ Edit an answer"), "edit"), button(_("❌ Cancel"), "cancel")],
        ]
    )


@dataclass(frozen=True)
class Turn:
    """One step of a member's check-in: where to answer, and the conversation's context."""

    bot: Bot
    chat_id: int
    state: FSMContext
    member: Member
    org: Organisation
    form: Form
    resolve: Resolve

    async def show(self, text: str, markup: Markup, *, edit: Message | None = None) -> None:
        """Edit the message whose button was pressed into what comes next, or send it anew (a
        reply keyboard can only come with a new message): one call instead of an edit and a
        send."""
        if edit is not None and (markup is None or isinstance(markup, InlineKeyboardMarkup)):
            await edit.edit_text(text, reply_markup=markup)
        else:
            await self.bot.send_message(self.chat_id, text, reply_markup=markup)

    async def ask(
        self, draft: Draft, *, header: str | None = None, edit: Message | None = None
    ) -> None:
        """Show the current question with the keyboard that fits its kind. A question without
        buttons brings the member menu back (the location question had replaced it)."""
        lang = current_language()
        q = self.form.question(draft.qid)
        markup: Markup = question_keyboard(q, draft, lang)
        if markup is None and draft.data.get("menu") is False:
            markup = menu_keyboard()
            draft.data["menu"] = True
        text = with_header(header, question_text(self.form, q, draft, lang))
        await self.show(text, markup, edit=edit)

    async def summary(
        self, draft: Draft, *, header: str | None = None, edit: Message | None = None
    ) -> None:
        facts = derive(
            self.form, draft.answers, geofence=org_geofence(self.org), resolve=self.resolve
        )
        await self.state.set_state(CheckInForm.summary)
        await save(self.state, draft)
        text = summary_text(self.form, draft, current_language(), facts.reasons)
        await self.show(with_header(header, text), summary_keyboard(draft), edit=edit)

    async def advance(
        self, draft: Draft, *, header: str | None = None, edit: Message | None = None
    ) -> None:
        """After an answer: the next question, or the summary (also after editing one answer)."""
        draft.data["selected"] = []
        draft.data["follow_up"] = False
        nxt = None if draft.data.get("editing") else self.form.next_question(draft.qid)
        if nxt is None:
            draft.data["editing"] = False
            await self.summary(draft, header=header, edit=edit)
            return
        draft.data["q"] = nxt.id
        if nxt.kind == "multi":
            draft.data["selected"] = list(draft.answers.get(nxt.id) or [])
        if nxt.kind == "location":
            draft.data["menu"] = False  # its reply keyboard replaces the member menu
        await self.ask(draft, header=header, edit=edit)
        await save(self.state, draft)

    async def begin(self, day: date, *, header: str | None = None) -> None:
        """A new draft for `day`, and its first question."""
        assert self.member.id is not None
        draft = Draft.new(day=day, form=self.form, member_id=self.member.id)
        if self.form.questions[0].kind == "location":
            draft.data["menu"] = False
        await self.state.set_state(CheckInForm.answering)
        await self.ask(draft, header=header)
        await save(self.state, draft)

    async def finish(self, text: str, draft: Draft, edit: Message | None) -> None:
        """The last word of a draft; it brings the member menu back if it is still away."""
        await self.state.clear()
        if draft.data.get("menu") is False or edit is None:
            await self.bot.send_message(self.chat_id, text, reply_markup=menu_keyboard())
        else:
            await edit.edit_text(text, reply_markup=None)


async def open_turn(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    repo: Repo,
    visitor: Visitor | None,
    resolve: Resolve,
) -> Turn | None:
    """The member's check-in context, or None when the sender is not enrolled."""
    found = await enrolment(repo, visitor)
    if found is None:
        return None
    member, org = found
    return Turn(bot, chat_id, state, member, org, forms.load_form(org.form), resolve)


async def start_checkin(turn: Turn, repo: Repo, clock: Clock) -> None:
    assert turn.member.id is not None
    today = local_day(clock.now(), turn.org.timezone)
    submitted = await repo.checkins.submitted_at(member_id=turn.member.id, local_day=today)
    header = None
    if submitted is not None:
        at = submitted.astimezone(zone(turn.org.timezone)).strftime("%H:%M")
        header = _("You already checked in today at {time}. Answering again will update it.")
        header = header.format(time=at)
    await turn.begin(today, header=header)


async def not_enrolled(bot: Bot, chat_id: int) -> None:
    await bot.send_message(
        chat_id,
        _("You are not enrolled yet. Please open the invite link from your counselor first."),
    )


@router.message(Command("checkin"), StateFilter(None))
@router.message(F.text == CHECKIN_BUTTON, StateFilter(None))
async def on_checkin(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    turn = await open_turn(bot, message.chat.id, state, repo, visitor, resolve)
    if turn is None:
        await not_enrolled(bot, message.chat.id)
        return
    await start_checkin(turn, repo, clock)


@router.callback_query(StartCheckInCb.filter(), StateFilter(None))
async def on_checkin_button(
    query: CallbackQuery,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    await query.answer()
    turn = await open_turn(bot, query.from_user.id, state, repo, visitor, resolve)
    if turn is None:
        await not_enrolled(bot, query.from_user.id)
        return
    await start_checkin(turn, repo, clock)


async def current_draft(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    visitor: Visitor | None,
    resolve: Resolve,
) -> tuple[Turn, Draft] | None:
    """The draft in progress, or None after saying why there is none (not enrolled any more,
    or a new local day: then today's check-in starts over)."""
    turn = await open_turn(bot, chat_id, state, repo, visitor, resolve)
    if turn is None:
        await state.clear()
        await bot.send_message(chat_id, _("You are not enrolled. Nothing was recorded."))
        return None
    draft = Draft(await state.get_data())
    if "draft" not in draft.data or draft.data.get("member") != turn.member.id:
        await state.clear()
        await bot.send_message(chat_id, _("That check-in is no longer open. Send /checkin."))
        return None
    today = local_day(clock.now(), turn.org.timezone)
    if draft.day != today:
        header = _("Your unfinished check-in of {day} has expired. Let's do today's.").format(
            day=draft.day.isoformat()
        )
        await turn.begin(today, header=header)
        return None
    return turn, draft


@router.message(StateFilter(CheckInForm.answering))
async def on_answer_message(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    found = await current_draft(bot, message.chat.id, state, repo, clock, visitor, resolve)
    if found is None:
        return
    turn, draft = found
    q = turn.form.question(draft.qid)
    problem = accept_message(q, draft, message)
    if problem is not None:
        await turn.ask(draft, header=problem)
        return
    header = None
    if q.kind == "location":
        place = describe_place(draft.answers[q.id], resolve)
        header = _("📍 Location received{place}.").format(place=place)
    await turn.advance(draft, header=header)


def describe_place(location: dict[str, Any], resolve: Resolve) -> str:
    place = resolve(float(location["lat"]), float(location["lon"]))
    if place is None:
        return ""
    parts = [p for p in (place.province, place.city) if p] or [place.country]
    return ": " + html.escape(" ".join(dict.fromkeys(parts)))


def accept_message(q: Question, draft: Draft, message: Message) -> str | None:
    """Store the message's answer in the draft, or return what is wrong with it."""
    if message.text and message.text.startswith("/"):
        return _("You are in the middle of a check-in. Answer the question below, or /cancel.")
    if q.kind == "location":
        if message.location is None:
            return _("I need your location: tap the button “📍 Send my location” below.")
        if message.forward_origin is not None:
            return _("A forwarded location cannot be used. Please share your own, current one.")
        loc = message.location
        try:
            draft.answers[q.id] = forms.location_answer(
                loc.latitude,
                loc.longitude,
                accuracy=loc.horizontal_accuracy,
                live=loc.live_period is not None,
            )
        except AnswerError as error:
            return error_text(error, q)
        return None
    if q.kind == "photo":
        if not message.photo:
            return _("Please send a photo (or tap Skip if you have none).")
        if message.forward_origin is not None:
            return _("A forwarded photo cannot be used. Please take a new one.")
        draft.answers[q.id] = message.photo[-1].file_id
        return None
    if q.kind == "yesno" and draft.data.get("follow_up"):
        if not message.text:
            return _("Please type the details as text.")
        try:
            detail = forms.parse_follow_up(q, message.text)
        except AnswerError as error:
            return error_text(error, q)
        draft.answers[q.id] = forms.yesno_answer(True, detail)
        draft.data["follow_up"] = False
        return None
    if q.kind in ("number", "text"):
        if not message.text:
            return (
                _("Please type a number.") if q.kind == "number" else _("Please type your answer.")
            )
        try:
            draft.answers[q.id] = (
                forms.parse_number(q, message.text)
                if q.kind == "number"
                else forms.parse_text(q, message.text)
            )
        except AnswerError as error:
            return error_text(error, q)
        return None
    return _("Please answer with the buttons under the question.")


@router.callback_query(AnswerCb.filter(), StateFilter(CheckInForm.answering))
async def on_answer_button(
    query: CallbackQuery,
    callback_data: AnswerCb,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    found = await current_draft(bot, query.from_user.id, state, repo, clock, visitor, resolve)
    if found is None:
        await query.answer()
        return
    turn, draft = found
    q = turn.form.question(draft.qid)
    if callback_data.draft != draft.id or callback_data.q != q.id:
        await query.answer(_("That button belongs to an earlier question."))
        await turn.ask(draft)
        return
    value = callback_data.value
    try:
        if value == SKIP:
            forms.skip(q)
            draft.answers[q.id] = None
        elif q.kind == "choice":
            draft.answers[q.id] = forms.choose(q, value)
        elif q.kind == "yesno" and value in (YES, NO):
            if value == YES and q.follow_up is not None:
                draft.data["follow_up"] = True
                await save(state, draft)
                await query.answer()
                await turn.ask(draft, edit=pressed(query))
                return
            draft.answers[q.id] = forms.yesno_answer(value == YES)
        elif q.kind == "multi" and value == DONE:
            draft.answers[q.id] = list(forms.finish_multi(q, draft.data.get("selected", [])))
        elif q.kind == "multi":
            draft.data["selected"] = list(
                forms.toggle(q, draft.data.get("selected", []), forms.choose(q, value))
            )
            await save(state, draft)
            await query.answer()
            if isinstance(query.message, Message):
                markup = question_keyboard(q, draft, current_language())
                assert isinstance(markup, InlineKeyboardMarkup)
                await query.message.edit_reply_markup(reply_markup=markup)
            return
        else:
            raise AnswerError("unknown_option")
    except AnswerError as error:
        await query.answer(error_text(error, q), show_alert=True)
        return
    await query.answer()
    lang = current_language()
    chosen = html.escape(forms.format_answer(q, draft.answers.get(q.id), lang))
    header = f"✔ {html.escape(q.label(lang))}: <b>{chosen}</b>"
    await turn.advance(draft, header=header, edit=pressed(query))


def pressed(query: CallbackQuery) -> Message | None:
    """The message whose button was pressed, when it can still be edited."""
    return query.message if isinstance(query.message, Message) else None


@router.callback_query(SummaryCb.filter(), StateFilter(CheckInForm.summary))
async def on_summary_button(
    query: CallbackQuery,
    callback_data: SummaryCb,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    event_update: Update,
    i18n: Translator,
    visitor: Visitor | None = None,
    outbox_wake: Callable[[], None] | None = None,
) -> None:
    found = await current_draft(bot, query.from_user.id, state, repo, clock, visitor, resolve)
    if found is None:
        await query.answer()
        return
    turn, draft = found
    if callback_data.draft != draft.id:
        await query.answer(_("That button belongs to an earlier check-in."), show_alert=True)
        return
    message = pressed(query)
    action = callback_data.action
    await query.answer()
    if action == "cancel":
        await turn.finish(_("Cancelled. Nothing was recorded."), draft, message)
    elif action == "edit" and message:
        await message.edit_reply_markup(reply_markup=edit_keyboard(turn.form, draft))
    elif action == "back" and message:
        await message.edit_reply_markup(reply_markup=summary_keyboard(draft))
    elif action == "pick" and callback_data.q in {q.id for q in turn.form.questions}:
        q = turn.form.question(callback_data.q)
        draft.data.update(q=q.id, editing=True, follow_up=False)
        draft.data["selected"] = list(draft.answers.get(q.id) or []) if q.kind == "multi" else []
        if q.kind == "location":
            draft.data["menu"] = False
        await state.set_state(CheckInForm.answering)
        await turn.ask(draft, edit=message)
        await save(state, draft)
    elif action == "confirm":
        text = await confirm(turn, draft, repo, clock, event_update.update_id, i18n, outbox_wake)
        await turn.finish(text, draft, message)


def edit_keyboard(form: Form, draft: Draft) -> InlineKeyboardMarkup:
    lang = current_language()
    rows = [
        [
            InlineKeyboardButton(
                text=q.label(lang),
                callback_data=SummaryCb(draft=draft.id, action="pick", q=q.id).pack(),
            )
        ]
        for q in form.questions
    ]
    rows.append(
        [
            InlineKeyboardButton(
                text=_("« Back"), callback_data=SummaryCb(draft=draft.id, action="back").pack()
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)


async def confirm(
    turn: Turn,
    draft: Draft,
    repo: Repo,
    clock: Clock,
    update_id: int,
    i18n: Translator,
    outbox_wake: Callable[[], None] | None,
) -> str:
    """Store the day's check-in (alerting managers if abnormal); returns what to tell the
    member."""
    form, org, member = turn.form, turn.org, turn.member
    facts = derive(form, draft.answers, geofence=org_geofence(org), resolve=turn.resolve)
    place = facts.place
    checkin, amended = await repo.checkins.submit(
        member=member,
        local_day=draft.day,
        form=form.name,
        form_version=form.version,
        submission=Submission(
            answers=draft.answers,
            abnormal=facts.abnormal,
            reasons=facts.reasons,
            latitude=facts.latitude,
            longitude=facts.longitude,
            accuracy_m=facts.accuracy_m,
            live=facts.live,
            country=place.country if place else None,
            province=place.province if place else None,
            city=place.city if place else None,
            outside_geofence=facts.outside_geofence,
        ),
        update_id=update_id,
        now=clock.now(),
    )
    note_checkin()
    if facts.abnormal:
        letters = await alert_letters(
            repo.session,
            i18n,
            org=org,
            member=member,
            day=draft.day,
            version=checkin.version,
            answers=draft.answers,
            reasons=facts.reasons,
        )
        if await OutboxRepo(repo.session).enqueue(letters, now=clock.now()) and outbox_wake:
            outbox_wake()
    lang = current_language()
    head = (
        _("✅ Today's check-in updated (version {version}).").format(version=checkin.version)
        if amended
        else _("✅ Check-in recorded for {day}.").format(day=draft.day.isoformat())
    )
    if not facts.abnormal:
        return f"{head}\n" + _("All answers are normal. Thank you!")
    labels = [
        form.question(r).label(lang) if r != GEOFENCE_REASON else _("location outside the area")
        for r in facts.reasons
    ]
    body = _(
        "⚠️ Some answers are abnormal: {items}. Please take care, and contact your "
        "counselor or village cadre if you need help."
    ).format(items=html.escape("、".join(labels) if lang == "zh" else ", ".join(labels)))
    return f"{head}\n{body}"


@router.message(StateFilter(CheckInForm.summary))
async def on_summary_message(
    message: Message,
    bot: Bot,
    state: FSMContext,
    repo: Repo,
    clock: Clock,
    resolve: Resolve,
    visitor: Visitor | None = None,
) -> None:
    found = await current_draft(bot, message.chat.id, state, repo, clock, visitor, resolve)
    if found is None:
        return
    turn, draft = found
    header = _("Please confirm or edit your answers with the buttons below.")
    await turn.summary(draft, header=header)
