"""What every question kind does, and the values kinds share.

A kind (`Kind`) reads its question's own YAML keys, turns a person's input into the stored value
(or refuses it with an `AnswerError` whose text it also holds), says what to ask (the prompt,
the buttons, a picker), shows an answer to people (summaries, reports, spreadsheet cells) and
judges whether an answer is abnormal. One instance of each kind is registered (`REGISTRY`) by
`domain.kinds`."""

from __future__ import annotations

import html
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Final

from domain.conversation.drafts import SKIP, Draft
from domain.conversation.io import Ask, Document, Location, Option, Photo, Press, Text
from domain.i18n import _

if TYPE_CHECKING:
    from domain.forms import Question

Lang = str  # "zh" or "en"

LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

# What a kind is handed: a message's content, or (`Press.key`) the value of one of its own
# buttons -- the core has unpacked the button's key and checked it belongs to this question.
Given = Text | Location | Photo | Document | Press


def normalize_lang(lang: str) -> Lang:
    """Map a language code ("en-US", "zh-hans") onto a form language; Chinese-first by default."""
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGS else "zh"


def pick(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(normalize_lang(lang)) or texts["zh"]


SKIPPED: Final[Mapping[Lang, str]] = {"zh": "未填", "en": "skipped"}


class FormError(Exception):
    """A form definition that cannot be used; the message names the file and the question."""


class AnswerError(ValueError):
    """An answer the bot must refuse; `code` and `params` pick and fill the message shown."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params: dict[str, object] = dict(params)
        detail = ", ".join(f"{k}={v!r}" for k, v in params.items())
        super().__init__(f"{code} ({detail})" if detail else code)


@dataclass(frozen=True)
class FormOption:
    """One answer of a choice or multi question."""

    id: str
    text: Mapping[str, str]
    exclusive: bool = False

    def label(self, lang: Lang) -> str:
        """The option as shown on its button and in summaries."""
        return pick(self.text, lang)


@dataclass(frozen=True)
class AbnormalRule:
    """When an answer needs the organiser's attention (a fever, a symptom, an exposure); which
    fields apply depends on the kind, which judges (`Kind.abnormal`)."""

    gte: float | None = None
    lte: float | None = None
    gt: float | None = None
    lt: float | None = None
    in_: frozenset[str] = frozenset()
    any: bool = False
    yes: bool = False

    def matches(self, question: Question, value: object) -> bool:
        """Whether a stored answer is abnormal; thresholds and sets are alternatives (any hits)."""
        if value is None:
            return False
        return REGISTRY[question.kind].abnormal(question, self, value)


@dataclass(frozen=True, slots=True)
class Answered:
    """The question is answered: store `value`."""

    value: Any


class Staying(Enum):
    """The answer is not complete yet and the question stays."""

    OPTIONS = "options"  # only its buttons change (an option of a multi question toggled)
    QUESTION = "question"  # it is asked again in a new shape (the details after "yes")


Outcome = Answered | Staying


@dataclass(frozen=True, slots=True)
class Asking:
    """What to ask: the question's text (escaped markup, with its hint), its buttons and the
    picker the channel should offer."""

    text: str
    options: list[list[Option]] = field(default_factory=list)
    ask: Ask | None = None


ErrorTexts = Mapping[str, Callable[[], str]]

# Errors more than one kind raises.
SHARED_ERRORS: Final[ErrorTexts] = {
    "empty": lambda: _("The answer is empty. Please type it."),
    "too_long": lambda: _("That is too long: at most {max_length} characters, please."),
    "unknown_option": lambda: _("Please choose one of the buttons."),
    "required": lambda: _("Please choose at least one option."),
    # Several options sent at once (a vote card, numbers typed together), one not the question's.
    "unknown_choice": lambda: _("Please answer with one of the question's options."),
    # Buttons on one channel, numbers to reply on another: the channel shows which.
    "use_buttons": lambda: _("Please answer with one of the question's options."),
}


class Kind:
    """One kind of question. Subclass, set `name` (and `keys`, `abnormal_keys` when it has
    them), override what differs, and name it in `domain.kinds`' `register(...)`."""

    name: ClassVar[str]
    keys: ClassVar[frozenset[str]] = frozenset()  # YAML keys of its own
    abnormal_keys: ClassVar[frozenset[str]] = frozenset()  # empty: it cannot be abnormal
    errors: ClassVar[ErrorTexts] = {}  # texts of the `AnswerError` codes it raises

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Its `Question` fields from its YAML keys (already checked to be among `keys`)."""
        return {}

    def parse_abnormal(self, raw: object, fields: Mapping[str, Any], where: str) -> AbnormalRule:
        """Its `abnormal:` rule (`fields`: what `parse` returned)."""
        from domain.kinds.checks import parse_abnormal

        return parse_abnormal(raw, self, fields.get("options", ()), where)

    def enter(self, q: Question, draft: Draft) -> None:
        """The question becomes the one being answered (first time, or again to edit it)."""

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        """What to ask now."""
        return Asking(self.prompt(q, lang), self.skip_row(q, draft))

    def prompt(self, q: Question, lang: Lang) -> str:
        return html.escape(q.prompt(lang))

    def skip_row(self, q: Question, draft: Draft) -> list[list[Option]]:
        """A Skip button, for an optional question."""
        return [] if q.required else [[Option(_("⏭ Skip"), draft.key(q.id, SKIP))]]

    def accept(self, q: Question, given: Given, draft: Draft) -> Outcome:
        """What an input does to the question; raises `AnswerError` when it cannot be used."""
        if isinstance(given, Press):
            return self.press(q, given.key, draft)
        return self.message(q, given, draft)

    def press(self, q: Question, value: str, draft: Draft) -> Outcome:
        """One of its buttons (Skip is the core's)."""
        raise AnswerError("unknown_option")

    def message(self, q: Question, given: Given, draft: Draft) -> Outcome:
        raise AnswerError("use_buttons")

    def format(self, q: Question, value: object, lang: Lang) -> str:
        """An answer (not None) as a person reads it in a summary or report."""
        return as_str(value)

    def cell(self, q: Question, value: object, lang: Lang = "zh") -> str:
        """An answer (not None, not "") as a spreadsheet cell (in Chinese for the machine
        contract, or in the organisation's language); raises TypeError or ValueError when it
        cannot read it."""
        return self.format(q, value, lang)

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        """What `cell` depends on, when answers repeat enough to remember cells (None: not)."""
        return None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        """Whether `value` (not None) breaks `rule`."""
        return False

    def retention_parts(self, q: Question) -> Mapping[str, int]:
        """Parts of an answer the form keeps for fewer days than the whole, by name (a yesno's
        typed details): none unless the kind has some (`domain.retention`)."""
        return {}

    def without_part(self, q: Question, value: object, part: str) -> object:
        """The answer once `part` (one of `retention_parts`) has expired."""
        return value

    def error_text(self, error: AnswerError) -> str:
        """The person-facing explanation of a refused answer."""
        make = self.errors.get(error.code) or SHARED_ERRORS.get(error.code) or _unusable
        values = {k: _shown(v) for k, v in error.params.items()}
        return make().format(**{"min": "", "max": "", "decimals": "", "max_length": "", **values})


def _unusable() -> str:
    return _("I could not use that answer. Please try again.")


def _shown(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


REGISTRY: dict[str, Kind] = {}


def register(*kinds: type[Kind]) -> None:
    """Make kinds known to forms and the check-in under their `name`s."""
    for cls in kinds:
        if cls.name in REGISTRY:
            raise ValueError(f"kind {cls.name!r} is registered twice")
        REGISTRY[cls.name] = cls()


def as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string answer, got {value!r}")


def as_number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number answer, got {value!r}")


def option_label(q: Question, option_id: str, lang: Lang) -> str:
    # An option removed from a newer version of the form still shows up in old answers.
    try:
        return q.option(option_id).label(lang)
    except KeyError:
        return option_id


def options_in_order(q: Question, chosen: Sequence[str] | set[str]) -> tuple[str, ...]:
    wanted = set(chosen)
    return tuple(o.id for o in q.options if o.id in wanted)
