"""Every option that applies, ticked one by one, then Done; an exclusive option ("none of
these") clears the others and is cleared by them. A channel that ticks boxes on its side (a
WeCom vote card, numbers typed together) sends them all with Done instead (`Press.chosen`):
each is checked, nothing chosen is refused when the question is required, and "none of these"
with others gives way to them, as when it is ticked first.

Stored: a ``list`` of option ids in form order (the draft keeps the ticks in "selected")."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

from domain.conversation.drafts import Draft
from domain.conversation.io import Box, Option, Press
from domain.i18n import _
from domain.kinds.base import (
    SKIPPED,
    AbnormalRule,
    Answered,
    AnswerError,
    Asking,
    Given,
    Kind,
    Lang,
    Outcome,
    Staying,
    option_label,
    options_in_order,
)
from domain.kinds.choice import choose, parse_options

if TYPE_CHECKING:
    from domain.forms import Question

DONE: Final = "__done"
SEPARATOR: Final[Mapping[Lang, str]] = {"zh": "、", "en": ", "}


def toggle(q: Question, selected: Sequence[str], option_id: str) -> tuple[str, ...]:
    """Flip one option of a multi question, keeping "none of these" exclusive of the rest."""
    option = q.option(choose(q, option_id))
    chosen = set(selected)
    if option.id in chosen:
        chosen.discard(option.id)
    elif option.exclusive:
        chosen = {option.id}
    else:
        chosen = {o.id for o in q.options if o.id in chosen and not o.exclusive}
        chosen.add(option.id)
    return options_in_order(q, chosen)


def finish_multi(q: Question, selected: Sequence[str]) -> tuple[str, ...]:
    """Close a multi question: form order, ids checked, nothing chosen only if optional."""
    for oid in selected:
        choose(q, oid)
    chosen = set(selected)
    if any(not q.option(i).exclusive for i in chosen):  # the others win over "none"
        chosen = {i for i in chosen if not q.option(i).exclusive}
    if not chosen and q.required:
        raise AnswerError("required")
    return options_in_order(q, chosen)


def submitted(q: Question, press: Press) -> tuple[str, ...]:
    """The options ticked on the channel's side and sent with Done, checked as untrusted."""
    if press.key != DONE or press.chosen is None:
        raise AnswerError("unknown_option")
    known = {o.id for o in q.options}
    if any(oid not in known for oid in press.chosen):
        raise AnswerError("unknown_choice")
    return finish_multi(q, tuple(dict.fromkeys(press.chosen)))


def as_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(i, str) for i in value):
        return tuple(value)
    raise TypeError(f"expected a list of option ids, got {value!r}")


class MultiKind(Kind):
    name = "multi"
    keys = frozenset({"options"})
    abnormal_keys = frozenset({"any", "in"})

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {"options": parse_options(raw.get("options"), where, self.name)}

    def enter(self, q: Question, draft: Draft) -> None:
        draft.data["selected"] = list(draft.answers.get(q.id) or [])

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        selected = set(draft.data.get("selected", []))
        rows = [
            [
                Option(
                    ("☑️ " if o.id in selected else "⬜ ") + o.label(lang),
                    draft.key(q.id, o.id),
                    box=Box(o.label(lang), o.id in selected),
                )
            ]
            for o in q.options
        ]
        rows.append([Option(_("Done ✔"), draft.key(q.id, DONE), submit=True)])
        hint = _("Choose every option that applies, then Done.")  # a button or a number
        return Asking(f"{self.prompt(q, lang)}\n{hint}", rows)

    def accept(self, q: Question, given: Given, draft: Draft) -> Outcome:
        if isinstance(given, Press) and given.chosen is not None:
            return Answered(list(submitted(q, given)))
        return super().accept(q, given, draft)

    def press(self, q: Question, value: str, draft: Draft) -> Outcome:
        selected = draft.data.get("selected", [])
        if value == DONE:
            return Answered(list(finish_multi(q, selected)))
        draft.data["selected"] = list(toggle(q, selected, choose(q, value)))
        return Staying.OPTIONS

    def format(self, q: Question, value: object, lang: Lang) -> str:
        ids = as_ids(value)
        if not ids:
            return SKIPPED[lang]
        return SEPARATOR[lang].join(option_label(q, i, lang) for i in ids)

    def cell(self, q: Question, value: object, lang: Lang = "zh") -> str:
        return "" if value == [] else self.format(q, value, lang)

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        if type(value) is list and all(type(i) is str for i in cast(list[object], value)):
            return (q.id, tuple(cast(list[str], value)))
        return None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        selected = set(as_ids(value))
        exclusive = {o.id for o in q.options if o.exclusive}
        if rule.any and selected - exclusive:
            return True
        return bool(selected & rule.in_)
