"""One option out of several, chosen with its button.

Stored: the option's id, ``str``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from domain.conversation.drafts import Draft
from domain.conversation.io import Option
from domain.kinds.base import (
    AbnormalRule,
    Answered,
    AnswerError,
    Asking,
    FormError,
    FormOption,
    Kind,
    Lang,
    as_str,
    option_label,
)
from domain.kinds.checks import check_id, check_keys, texts

if TYPE_CHECKING:
    from domain.forms import Question


def parse_options(raw: object, where: str, kind: str) -> tuple[FormOption, ...]:
    """The `options:` of a choice or multi question (only a multi's may be exclusive)."""
    if not isinstance(raw, list) or len(raw) < 2:
        raise FormError(f"{where}: a {kind} question needs 'options', a list of at least two")
    options: list[FormOption] = []
    for number, item in enumerate(raw, 1):
        owhere = f"{where}: option #{number}"
        if not isinstance(item, Mapping):
            raise FormError(f"{owhere}: an option must be a mapping with id and text")
        check_keys(item, frozenset({"id", "text", "exclusive"}), owhere, "an option")
        oid = check_id(item.get("id"), owhere)
        owhere = f"{where}: option {oid!r}"
        if any(o.id == oid for o in options):
            raise FormError(f"{owhere}: duplicate option id")
        exclusive = item.get("exclusive", False)
        if not isinstance(exclusive, bool):
            raise FormError(f"{owhere}: 'exclusive' must be true or false, got {exclusive!r}")
        if exclusive and kind != "multi":
            raise FormError(f"{owhere}: only a multi question may have an exclusive option")
        options.append(
            FormOption(id=oid, text=texts(item.get("text"), owhere, "text"), exclusive=exclusive)
        )
    exclusive_ids = [o.id for o in options if o.exclusive]
    if len(exclusive_ids) > 1:
        raise FormError(
            f"{where}: at most one exclusive option is allowed, got {', '.join(exclusive_ids)}"
        )
    return tuple(options)


def choose(q: Question, option_id: str) -> str:
    """Validate a pressed option, since callback data can be stale or forged."""
    if not any(o.id == option_id for o in q.options):
        raise AnswerError("unknown_option", option=option_id)
    return option_id


class ChoiceKind(Kind):
    name = "choice"
    keys = frozenset({"options"})
    abnormal_keys = frozenset({"in"})

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        return {"options": parse_options(raw.get("options"), where, self.name)}

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        rows = [[Option(o.label(lang), draft.key(q.id, o.id))] for o in q.options]
        return Asking(self.prompt(q, lang), rows + self.skip_row(q, draft))

    def press(self, q: Question, value: str, draft: Draft) -> Answered:
        return Answered(choose(q, value))

    def format(self, q: Question, value: object, lang: Lang) -> str:
        return option_label(q, as_str(value), lang)

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        of = type(value)
        return (q.id, of, value) if of is float or of is int or of is str else None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        return as_str(value) in rule.in_
