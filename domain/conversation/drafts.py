"""A check-in in progress (its draft, kept in the conversation state) and the keys of its
buttons.

The draft is plain JSON in the channel's state storage (database or Redis), so it survives a
restart; its keys ("draft", "day", "form", "member", "q", "answers", "selected", "follow_up",
"editing", "menu") are what drafts already in flight carry, so they do not change.

The keys pack exactly as the aiogram `CallbackData` classes they replace ("ans", "sum", "go"),
so buttons already in people's chats keep working."""

from __future__ import annotations

import secrets
from datetime import date
from typing import TYPE_CHECKING, Any

from domain.conversation.keys import Key
from domain.keys import CHECKIN_NOW

if TYPE_CHECKING:
    from domain.forms import Form

# Conversation states; the names aiogram's `CheckInForm` StatesGroup gives them.
ANSWERING = "CheckInForm:answering"
SUMMARY = "CheckInForm:summary"

SKIP = "__skip"  # the value of the Skip button of an optional question, whatever its kind


class AnswerKey(Key, prefix="ans"):
    """A press on a question's button; `draft` ties it to one draft so stale presses are seen."""

    draft: str
    q: str
    value: str


class SummaryKey(Key, prefix="sum"):
    """A press under the summary: confirm, edit (then pick a question, or back), cancel."""

    draft: str
    action: str
    q: str = ""


class StartCheckInKey(Key, prefix=CHECKIN_NOW):
    """Start today's check-in (under reminders and /today)."""


class Draft:
    """Typed access to the state data of a check-in in progress."""

    __slots__ = ("data",)

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

    def key(self, qid: str, value: str) -> str:
        """The packed key of a button of question `qid` of this draft."""
        return AnswerKey(draft=self.id, q=qid, value=value).pack()
