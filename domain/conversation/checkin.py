"""The daily check-in dialogue, for every channel: one question at a time (each asked, read and
shown by its kind, `domain.kinds`), a summary to confirm or edit, then the day's check-in stored
with what it means (place, geofence, abnormal reasons) and the managers alerted when abnormal.

Adapters call `on_start` (/checkin, the member menu's button, a "go" button), `on_answer`
(anything while the state is `ANSWERING`) and `on_summary` (anything at `SUMMARY`). The draft
lives in the conversation state (`drafts.Draft`), so it survives a restart. Every press is
checked here: a key that does not unpack, or that belongs to another draft or question, is
answered, never obeyed."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.checkin import derive
from domain.clock import local_day, zone
from domain.conversation.boxes import chosen_values
from domain.conversation.common import member_and_org
from domain.conversation.confirm import (
    confirm,
    edit_options,
    org_geofence,
    summary_options,
    summary_text,
)
from domain.conversation.drafts import (
    ANSWERING,
    SKIP,
    SUMMARY,
    AnswerKey,
    Draft,
    StartCheckInKey,
    SummaryKey,
)
from domain.conversation.io import Ask, Command, Input, Location, Options, Photo, Press
from domain.conversation.keys import BadKey
from domain.conversation.photos import Fetch, discard_draft_photos, keep_photo
from domain.conversation.privacy import withdrawn_text
from domain.conversation.turn import Turn
from domain.forms import Form, format_answer, load_form, skip
from domain.geo import Place
from domain.i18n import _, current_language
from domain.kinds import Answered, AnswerError, Outcome, Staying
from storage.models import Member, Organisation

Resolve = Callable[[float, float], Place | None]

GO = StartCheckInKey().pack()


def expired() -> str:
    """The answer to a press whose key is not ours (forged, or from before an upgrade)."""
    return _("This button has expired. Send /checkin to start again.")


def with_header(header: str | None, text: str) -> str:
    return f"{header}\n\n{text}" if header else text


@dataclass(slots=True)
class Dialogue:
    """A member's check-in during one turn: whose it is, the form, where places come from."""

    turn: Turn
    member: Member
    org: Organisation
    form: Form
    resolve: Resolve

    async def save(self, draft: Draft) -> None:
        await self.turn.state.set_data(draft.data)

    async def show(
        self, text: str, options: Options, *, ask: Ask | None = None, edit: bool = False
    ) -> None:
        """Edit the message whose button was pressed into what comes next, or say it anew (a
        picker or the member menu comes only with a new message): one call, not two."""
        if edit and ask is None:
            await self.turn.out.replace(text, options)
        else:
            await self.turn.out.say(text, options, ask=ask)

    async def ask(self, draft: Draft, *, header: str | None = None, edit: bool = False) -> None:
        """The current question as its kind asks it. A location picker replaces the member
        menu; the next question without buttons brings the menu back."""
        q = self.form.question(draft.qid)
        asking = q.kind_of.ask(q, draft, current_language())
        ask = asking.ask
        if ask is Ask.LOCATION:
            draft.data["menu"] = False
        elif not asking.options and draft.data.get("menu") is False:
            ask = Ask.MENU
            draft.data["menu"] = True
        step = f"({self.form.index(q.id) + 1}/{len(self.form.questions)}) "
        text = with_header(header, step + asking.text)
        await self.show(text, asking.options, ask=ask, edit=edit)

    async def summary(
        self, draft: Draft, *, header: str | None = None, edit: bool = False
    ) -> None:
        facts = derive(
            self.form, draft.answers, geofence=org_geofence(self.org), resolve=self.resolve
        )
        await self.turn.state.set_state(SUMMARY)
        await self.save(draft)
        text = summary_text(self.form, draft, current_language(), facts.reasons)
        await self.show(with_header(header, text), summary_options(draft), edit=edit)

    async def advance(
        self, draft: Draft, *, header: str | None = None, edit: bool = False
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
        nxt.kind_of.enter(nxt, draft)
        await self.ask(draft, header=header, edit=edit)
        await self.save(draft)

    async def begin(self, day: date, *, header: str | None = None) -> None:
        """A new draft for `day`, and its first question; the photos of a draft it replaces
        (left overnight) go, never submitted."""
        assert self.member.id is not None
        await discard_draft_photos(self.turn, await self.turn.state.get_data())
        draft = Draft.new(day=day, form=self.form, member_id=self.member.id)
        first = self.form.questions[0]
        first.kind_of.enter(first, draft)
        await self.turn.state.set_state(ANSWERING)
        await self.ask(draft, header=header)
        await self.save(draft)

    async def finish(self, text: str, draft: Draft, *, edit: bool) -> None:
        """The last word of a draft; it brings the member menu back if it is still away."""
        await self.turn.state.clear()
        if draft.data.get("menu") is False or not edit:
            await self.turn.out.say(text, ask=Ask.MENU)
        else:
            await self.turn.out.replace(text)


async def open_dialogue(turn: Turn, resolve: Resolve) -> Dialogue | None:
    """The member's check-in context, or None when the sender is not enrolled."""
    found = await member_and_org(turn.repo, turn.visitor)
    if found is None:
        return None
    member, org = found
    return Dialogue(turn, member, org, load_form(org.form), resolve)


async def on_start(turn: Turn, given: Input, *, resolve: Resolve) -> None:
    """Today's check-in from its first question, saying so if today's is already in."""
    if isinstance(given, Press):
        if given.key != GO:
            await turn.out.notice(expired(), alert=True)
            return
        await turn.out.notice()
    dialogue = await open_dialogue(turn, resolve)
    if dialogue is None:
        await turn.out.say(
            _("You are not enrolled yet. Please open the invite link from your counselor first.")
        )
        return
    if dialogue.member.withdrawn_at is not None:
        await turn.out.say(withdrawn_text(dialogue.org, dialogue.member.withdrawn_day))
        return
    assert dialogue.member.id is not None
    today = local_day(turn.clock.now(), dialogue.org.timezone)
    submitted = await turn.repo.checkins.submitted_at(
        member_id=dialogue.member.id, local_day=today
    )
    header = None
    if submitted is not None:
        at = submitted.astimezone(zone(dialogue.org.timezone)).strftime("%H:%M")
        header = _("You already checked in today at {time}. Answering again will update it.")
        header = header.format(time=at)
    await dialogue.begin(today, header=header)


async def current_draft(turn: Turn, resolve: Resolve) -> tuple[Dialogue, Draft] | None:
    """The draft in progress, or None after saying why there is none (not enrolled any more,
    or a new local day: then today's check-in starts over)."""
    dialogue = await open_dialogue(turn, resolve)
    if dialogue is None:
        await turn.state.clear()
        await turn.out.say(_("You are not enrolled. Nothing was recorded."))
        return None
    if dialogue.member.withdrawn_at is not None:
        await turn.state.clear()
        await turn.out.say(withdrawn_text(dialogue.org, dialogue.member.withdrawn_day))
        return None
    draft = Draft(await turn.state.get_data())
    if "draft" not in draft.data or draft.data.get("member") != dialogue.member.id:
        await turn.state.clear()
        await turn.out.say(_("That check-in is no longer open. Send /checkin."))
        return None
    today = local_day(turn.clock.now(), dialogue.org.timezone)
    if draft.day != today:
        header = _("Your unfinished check-in of {day} has expired. Let's do today's.").format(
            day=draft.day.isoformat()
        )
        await dialogue.begin(today, header=header)
        return None
    return dialogue, draft


async def on_answer(turn: Turn, given: Input, *, resolve: Resolve, fetch: Fetch) -> None:
    """Anything the member sends or presses while a question is open; a photo answered is
    fetched from the channel with `fetch` and kept (`photos.keep_photo`)."""
    if isinstance(given, Press):
        await _answer_press(turn, given, resolve)
    else:
        await _answer_message(turn, given, resolve, fetch)


async def _answer_message(turn: Turn, given: Input, resolve: Resolve, fetch: Fetch) -> None:
    found = await current_draft(turn, resolve)
    if found is None:
        return
    dialogue, draft = found
    q = dialogue.form.question(draft.qid)
    if isinstance(given, Command):
        busy = _("You are in the middle of a check-in. Answer the question below, or /cancel.")
        await dialogue.ask(draft, header=busy)
        return
    kind = q.kind_of
    try:
        outcome = kind.accept(q, given, draft)
    except AnswerError as error:
        await dialogue.ask(draft, header=kind.error_text(error))
        return
    if not isinstance(outcome, Answered):
        await dialogue.ask(draft)
        await dialogue.save(draft)
        return
    value = outcome.value
    if isinstance(given, Photo):
        value = await keep_photo(dialogue, draft, given, fetch)
        if value is None:
            return
    draft.answers[q.id] = value
    header = None
    if isinstance(given, Location):
        place = describe_place(outcome.value, resolve)
        header = _("📍 Location received{place}.").format(place=place)
    await dialogue.advance(draft, header=header)


def describe_place(location: dict[str, Any], resolve: Resolve) -> str:
    place = resolve(float(location["lat"]), float(location["lon"]))
    if place is None:
        return ""
    parts = [p for p in (place.province, place.city) if p] or [place.country]
    return ": " + html.escape(" ".join(dict.fromkeys(parts)))


async def _answer_press(turn: Turn, press: Press, resolve: Resolve) -> None:
    try:
        key = AnswerKey.unpack(press.key)
    except BadKey:
        await turn.out.notice(expired(), alert=True)
        return
    found = await current_draft(turn, resolve)
    if found is None:
        await turn.out.notice()
        return
    dialogue, draft = found
    q = dialogue.form.question(draft.qid)
    if key.draft != draft.id or key.q != q.id:
        await turn.out.notice(_("That button belongs to an earlier question."))
        await dialogue.ask(draft)
        return
    kind = q.kind_of
    try:
        if key.value == SKIP:
            skip(q)
            outcome: Outcome = Answered(None)
        else:
            ticked = None if press.chosen is None else chosen_values(press.chosen, draft, q.id)
            outcome = kind.accept(q, Press(key.value, ticked), draft)
    except AnswerError as error:
        if press.chosen is not None:  # a whole answer sent at once: ask again, saying why
            await turn.out.notice()
            await dialogue.ask(draft, header=kind.error_text(error), edit=True)
            return
        await turn.out.notice(kind.error_text(error), alert=True)
        return
    if outcome is Staying.OPTIONS:
        await dialogue.save(draft)
        await turn.out.notice()
        await turn.out.update_options(kind.ask(q, draft, current_language()).options)
        return
    if outcome is Staying.QUESTION:
        await turn.out.notice()
        await dialogue.ask(draft, edit=True)
        await dialogue.save(draft)
        return
    assert isinstance(outcome, Answered)
    await discard_draft_photos(turn, draft.data, only=q.id)  # a photo sent, then skipped
    draft.answers[q.id] = outcome.value
    await turn.out.notice()
    lang = current_language()
    chosen = html.escape(format_answer(q, outcome.value, lang))
    header = f"✔ {html.escape(q.label(lang))}: <b>{chosen}</b>"
    await dialogue.advance(draft, header=header, edit=True)


async def on_summary(
    turn: Turn,
    given: Input,
    *,
    resolve: Resolve,
    wake: Callable[[], None] | None = None,
    recorded: Callable[[], None] | None = None,
) -> None:
    """At the summary: confirm (store; `recorded` counts it, `wake` wakes the outbox sender
    when alerts were queued), edit one answer, cancel; anything typed shows the summary again."""
    if not isinstance(given, Press):
        found = await current_draft(turn, resolve)
        if found is not None:
            dialogue, draft = found
            header = _("Please confirm or edit your answers: choose one of the options.")
            await dialogue.summary(draft, header=header)
        return
    try:
        key = SummaryKey.unpack(given.key)
    except BadKey:
        await turn.out.notice(expired(), alert=True)
        return
    found = await current_draft(turn, resolve)
    if found is None:
        await turn.out.notice()
        return
    dialogue, draft = found
    if key.draft != draft.id:
        await turn.out.notice(_("That button belongs to an earlier check-in."), alert=True)
        return
    await turn.out.notice()
    form = dialogue.form
    if key.action == "cancel":
        await discard_draft_photos(turn, draft.data)
        await dialogue.finish(_("Cancelled. Nothing was recorded."), draft, edit=True)
    elif key.action == "edit":
        await turn.out.update_options(edit_options(form, draft))
    elif key.action == "back":
        await turn.out.update_options(summary_options(draft))
    elif key.action == "pick" and any(q.id == key.q for q in form.questions):
        q = form.question(key.q)
        draft.data.update(q=q.id, editing=True, follow_up=False, selected=[])
        q.kind_of.enter(q, draft)
        await turn.state.set_state(ANSWERING)
        await dialogue.ask(draft, edit=True)
        await dialogue.save(draft)
    elif key.action == "confirm":
        text = await confirm(dialogue, draft, wake=wake, recorded=recorded)
        await dialogue.finish(text, draft, edit=True)
