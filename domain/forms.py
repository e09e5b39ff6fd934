"""Declarative check-in forms: YAML shipped in the package, validated when loaded.

A form is a list of questions an organisation asks its members every day. Forms live in
`domain/forms/<name>.yaml` and are validated when loaded, so a typo fails at start-up rather
than in the middle of somebody's check-in. What differs by kind of question (its YAML keys,
reading an answer, showing it, judging it abnormal) is the kind's (`domain.kinds`); the
functions re-exported here (`parse_number`, `choose`, `toggle`, ...) are theirs.

Stored answer values (JSON-serialisable; this is the storage contract):

- location: ``{"lat": float, "lon": float, "accuracy": float | None, "live": bool}``
- number: ``float``
- choice: option id ``str``
- multi: ``list`` of option ids
- yesno: ``{"yes": bool, "detail": str | None}``
- text: ``str``
- photo: ``media:<id>``, the photo kept in the `photo` table, ``str`` (earlier: a
  Telegram ``file_id``)
- a skipped optional question: ``None``

How long answers are kept (`domain.retention`): a question may say `retain_days` (a yesno's
typed details also `follow_up_retain_days`); the rest are kept for the organisation's
`retain_days`; the form's `max_retain_days` (default `DEFAULT_MAX_RETAIN_DAYS`) bounds both.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Final

import yaml

from domain import kinds
from domain.kinds.base import (
    LANGS,
    SKIPPED,
    AbnormalRule,
    AnswerError,
    FormError,
    Kind,
    Lang,
    normalize_lang,
)
from domain.kinds.base import FormOption as Option
from domain.kinds.base import pick as _pick
from domain.kinds.checks import check_id, check_keys, is_int, positive_int, texts
from domain.kinds.choice import choose
from domain.kinds.location import location_answer
from domain.kinds.multi import finish_multi, toggle
from domain.kinds.number import DEFAULT_DECIMALS, MAX_DECIMALS, parse_number
from domain.kinds.text import DEFAULT_TEXT_MAX_LENGTH, parse_text
from domain.kinds.yesno import parse_follow_up, yesno_answer

__all__ = [
    "ANSWER_ERROR_CODES",
    "DEFAULT_DECIMALS",
    "DEFAULT_MAX_RETAIN_DAYS",
    "DEFAULT_TEXT_MAX_LENGTH",
    "KINDS",
    "LANGS",
    "MAX_DECIMALS",
    "AbnormalRule",
    "AnswerError",
    "Form",
    "FormError",
    "Lang",
    "Option",
    "Question",
    "abnormal_reasons",
    "available_forms",
    "choose",
    "finish_multi",
    "form_from_yaml",
    "format_answer",
    "load_form",
    "location_answer",
    "normalize_lang",
    "parse_follow_up",
    "parse_form",
    "parse_number",
    "parse_text",
    "skip",
    "toggle",
    "yesno_answer",
]

KINDS: Final[tuple[str, ...]] = kinds.names()

# The longest an answer is kept when the form names no `max_retain_days`.
DEFAULT_MAX_RETAIN_DAYS: Final = 366

ANSWER_ERROR_CODES: Final = frozenset(
    {
        "not_a_number",
        "too_low",
        "too_high",
        "too_many_decimals",
        "empty",
        "too_long",
        "unknown_option",
        "required",
    }
)


# --------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True)
class Question:
    """One question of a form; which fields matter depends on `kind`."""

    id: str
    kind: str
    text: Mapping[str, str]
    required: bool = True
    min: float | None = None
    max: float | None = None
    decimals: int = DEFAULT_DECIMALS
    unit: str | None = None
    options: tuple[Option, ...] = ()
    max_length: int | None = None
    follow_up: Mapping[str, str] | None = None
    follow_up_max_length: int = DEFAULT_TEXT_MAX_LENGTH
    abnormal: AbnormalRule | None = None
    short: Mapping[str, str] | None = None  # YAML key `label`
    retain_days: int | None = None  # None: the organisation's `retain_days`
    follow_up_retain_days: int | None = None  # a yesno's typed details, when kept less

    def prompt(self, lang: Lang) -> str:
        """The question as asked in the chat."""
        return _pick(self.text, lang)

    def label(self, lang: Lang) -> str:
        """A short name for summaries and reports; falls back to the full prompt."""
        return _pick(self.short, lang) if self.short is not None else self.prompt(lang)

    def follow_up_prompt(self, lang: Lang) -> str | None:
        """The detail question a yesno asks after "yes", if it has one."""
        return _pick(self.follow_up, lang) if self.follow_up is not None else None

    def option(self, option_id: str) -> Option:
        """Look an option up by id, since callbacks and stored answers carry only ids."""
        for opt in self.options:
            if opt.id == option_id:
                return opt
        raise KeyError(f"question {self.id!r} has no option {option_id!r}")

    @property
    def exclusive_option(self) -> Option | None:
        """The "none of these" option of a multi question, if any."""
        return next((o for o in self.options if o.exclusive), None)

    @functools.cached_property
    def kind_of(self) -> Kind:
        """The kind that asks, reads, shows and judges this question's answers (looked up once:
        exports ask it for every cell)."""
        return kinds.REGISTRY[self.kind]


@dataclass(frozen=True)
class Form:
    """A named, versioned list of questions asked in order."""

    name: str
    version: int
    title: Mapping[str, str]
    questions: tuple[Question, ...]
    max_retain_days: int = DEFAULT_MAX_RETAIN_DAYS  # no answer is kept longer

    def heading(self, lang: Lang) -> str:
        """The form's title in `lang`."""
        return _pick(self.title, lang)

    def question(self, qid: str) -> Question:
        """Look a question up by id, since conversation state stores only ids."""
        return self.questions[self.index(qid)]

    def index(self, qid: str) -> int:
        """Position of a question, for progress like "2/5"."""
        for i, q in enumerate(self.questions):
            if q.id == qid:
                return i
        raise KeyError(f"form {self.name!r} has no question {qid!r}")

    def next_question(self, qid: str | None) -> Question | None:
        """The question after `qid` (the first for None); None means it is time for the summary."""
        i = 0 if qid is None else self.index(qid) + 1
        return self.questions[i] if i < len(self.questions) else None


# --------------------------------------------------------------------------------------------
# Loading and validation


class _FormLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, so `yes`, `no`, `on` and `off` stay strings."""


_FormLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_FormLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_COMMON_KEYS: Final = frozenset(
    {"id", "kind", "text", "label", "required", "abnormal", "retain_days"}
)


def _forms_dir() -> Traversable:
    return resources.files("domain").joinpath("forms")


def available_forms() -> list[str]:
    """Names of the shipped forms, for the organiser's form picker and error messages."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in _forms_dir().iterdir()
        if entry.is_file() and entry.name.endswith(".yaml")
    )


@functools.cache
def load_form(name: str) -> Form:
    """Load a shipped form once; organisations pick forms by name, so unknown names fail loudly."""
    available = available_forms()
    if name not in available:
        raise FormError(f"unknown form {name!r}; available: {', '.join(available)}")
    text = _forms_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return form_from_yaml(text, name=name, source=f"domain/forms/{name}.yaml")


def form_from_yaml(text: str, *, name: str, source: str | None = None) -> Form:
    """Parse and validate YAML form text (YAML 1.2 booleans: an option called `no` stays `no`)."""
    src = source or f"form {name!r}"
    try:
        data = yaml.load(text, Loader=_FormLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise FormError(f"{src}: not valid YAML: {exc}") from exc
    return parse_form(data, name=name, source=src)


def parse_form(data: Mapping[str, Any], *, name: str, source: str | None = None) -> Form:
    """Validate a whole definition up front, so a broken form never reaches a member's chat."""
    src = source or f"form {name!r}"
    if not isinstance(data, Mapping):
        raise FormError(f"{src}: a form must be a mapping with version, title and questions")
    check_keys(
        data, frozenset({"version", "title", "questions", "max_retain_days"}), src, "a form"
    )
    version = data.get("version")
    if not is_int(version) or version < 1:
        raise FormError(f"{src}: 'version' must be a positive integer, got {version!r}")
    title = texts(data.get("title"), src, "title")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise FormError(f"{src}: 'questions' must be a non-empty list")
    questions: list[Question] = []
    for number, raw in enumerate(raw_questions, 1):
        question = _parse_question(raw, src, number)
        if any(q.id == question.id for q in questions):
            raise FormError(f"{src}: question {question.id!r}: duplicate question id")
        questions.append(question)
    bound = positive_int(data, "max_retain_days", src, DEFAULT_MAX_RETAIN_DAYS)
    for q in questions:
        for key, days in (
            ("retain_days", q.retain_days),
            ("follow_up_retain_days", q.follow_up_retain_days),
        ):
            if days is not None and days > bound:
                raise FormError(
                    f"{src}: question {q.id!r}: {key!r} is {days}, more than the form's "
                    f"max_retain_days ({bound})"
                )
    return Form(
        name=name,
        version=version,
        title=title,
        questions=tuple(questions),
        max_retain_days=bound,
    )


def _parse_question(raw: object, src: str, number: int) -> Question:
    """The keys every question has, then its kind's own (`Kind.parse`, `Kind.parse_abnormal`)."""
    where = f"{src}: question #{number}"
    if not isinstance(raw, Mapping):
        raise FormError(f"{where}: a question must be a mapping")
    qid = check_id(raw.get("id"), where)
    where = f"{src}: question {qid!r}"
    kind_name = raw.get("kind")
    kind = kinds.REGISTRY.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise FormError(f"{where}: unknown kind {kind_name!r} (known: {', '.join(KINDS)})")
    check_keys(raw, _COMMON_KEYS | kind.keys, where, f"a {kind.name} question")

    text = texts(raw.get("text"), where, "text")
    short = texts(raw["label"], where, "label") if "label" in raw else None
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise FormError(f"{where}: 'required' must be true or false, got {required!r}")
    retain_days = positive_int(raw, "retain_days", where, 0) if "retain_days" in raw else None
    fields = kind.parse(raw, where)
    abnormal = kind.parse_abnormal(raw["abnormal"], fields, where) if "abnormal" in raw else None
    return Question(
        id=qid,
        kind=kind.name,
        text=text,
        required=required,
        abnormal=abnormal,
        short=short,
        retain_days=retain_days,
        **fields,
    )


# --------------------------------------------------------------------------------------------
# Answers


def abnormal_reasons(form: Form, answers: Mapping[str, object]) -> list[str]:
    """Ids of the abnormal answers in form order, so organisers see who needs a follow-up."""
    return [
        q.id
        for q in form.questions
        if q.abnormal is not None and q.abnormal.matches(q, answers.get(q.id))
    ]


def skip(q: Question) -> None:
    """The stored value of a skipped question; only optional questions may be skipped."""
    if q.required:
        raise AnswerError("required")
    return None


def format_answer(q: Question, value: object, lang: str) -> str:
    """An answer as a person reads it in a summary or report."""
    lang = normalize_lang(lang)
    if value is None:
        return SKIPPED[lang]
    return q.kind_of.format(q, value, lang)
