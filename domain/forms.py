"""Declarative check-in forms: YAML shipped in the package, answer parsing, abnormal rules.

A form is a list of questions an organisation asks its members every day. Forms live in
`domain/forms/<name>.yaml` and are validated when loaded, so a typo fails at start-up rather
than in the middle of somebody's check-in.

Stored answer values (JSON-serialisable; this is the storage contract):

- location: ``{"lat": float, "lon": float, "accuracy": float | None, "live": bool}``
- number: ``float``
- choice: option id ``str``
- multi: ``list`` of option ids
- yesno: ``{"yes": bool, "detail": str | None}``
- text: ``str``
- photo: Telegram ``file_id`` ``str``
- a skipped optional question: ``None``
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any, Final, TypeGuard

import yaml

from domain.geo import validate_coordinates

Lang = str  # "zh" or "en"

LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
KINDS: Final[tuple[str, ...]] = ("location", "number", "choice", "multi", "yesno", "text", "photo")
DEFAULT_DECIMALS: Final = 1
MAX_DECIMALS: Final = 6
DEFAULT_TEXT_MAX_LENGTH: Final = 200

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

# Ids travel in Telegram callback data (64 bytes at most), so keep them short and plain.
_ID_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_WORDS: Final[Mapping[str, Mapping[Lang, str]]] = {
    "skipped": {"zh": "未填", "en": "skipped"},
    "yes": {"zh": "是", "en": "Yes"},
    "no": {"zh": "否", "en": "No"},
    "photo": {"zh": "已附照片", "en": "photo attached"},
    "live": {"zh": "实时", "en": "live"},
}
_LIST_SEPARATOR: Final[Mapping[Lang, str]] = {"zh": "、", "en": ", "}


def normalize_lang(lang: str) -> Lang:
    """Map a language code ("en-US", "zh-hans") onto a form language; Chinese-first by default."""
    base = lang.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGS else "zh"


def _pick(texts: Mapping[str, str], lang: str) -> str:
    return texts.get(normalize_lang(lang)) or texts["zh"]


# --------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True)
class Option:
    """One answer of a choice or multi question."""

    id: str
    text: Mapping[str, str]
    exclusive: bool = False

    def label(self, lang: Lang) -> str:
        """The option as shown on its button and in summaries."""
        return _pick(self.text, lang)


@dataclass(frozen=True)
class AbnormalRule:
    """When an answer needs the organiser's attention (a fever, a symptom, an exposure)."""

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
        if question.kind == "number":
            x = _as_number(value)
            return (
                (self.gte is not None and x >= self.gte)
                or (self.lte is not None and x <= self.lte)
                or (self.gt is not None and x > self.gt)
                or (self.lt is not None and x < self.lt)
            )
        if question.kind == "choice":
            return _as_str(value) in self.in_
        if question.kind == "multi":
            selected = set(_as_ids(value))
            exclusive = {o.id for o in question.options if o.exclusive}
            if self.any and selected - exclusive:
                return True
            return bool(selected & self.in_)
        if question.kind == "yesno":
            return self.yes and _as_yesno(value)[0]
        return False


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


@dataclass(frozen=True)
class Form:
    """A named, versioned list of questions asked in order."""

    name: str
    version: int
    title: Mapping[str, str]
    questions: tuple[Question, ...]

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


class FormError(Exception):
    """A form definition that cannot be used; the message names the file and the question."""


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

_COMMON_KEYS: Final = frozenset({"id", "kind", "text", "label", "required", "abnormal"})
_KIND_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "location": frozenset(),
    "number": frozenset({"min", "max", "decimals", "unit"}),
    "choice": frozenset({"options"}),
    "multi": frozenset({"options"}),
    "yesno": frozenset({"follow_up", "follow_up_max_length"}),
    "text": frozenset({"max_length"}),
    "photo": frozenset(),
}
_ABNORMAL_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "number": frozenset({"gte", "lte", "gt", "lt"}),
    "choice": frozenset({"in"}),
    "multi": frozenset({"any", "in"}),
    "yesno": frozenset({"yes"}),
}


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
    _check_keys(data, frozenset({"version", "title", "questions"}), src, "a form")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        raise FormError(f"{src}: 'version' must be a positive integer, got {version!r}")
    title = _texts(data.get("title"), src, "title")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list) or not raw_questions:
        raise FormError(f"{src}: 'questions' must be a non-empty list")
    questions: list[Question] = []
    for number, raw in enumerate(raw_questions, 1):
        question = _parse_question(raw, src, number)
        if any(q.id == question.id for q in questions):
            raise FormError(f"{src}: question {question.id!r}: duplicate question id")
        questions.append(question)
    return Form(name=name, version=version, title=title, questions=tuple(questions))


def _parse_question(raw: object, src: str, number: int) -> Question:
    where = f"{src}: question #{number}"
    if not isinstance(raw, Mapping):
        raise FormError(f"{where}: a question must be a mapping")
    qid = raw.get("id")
    if not isinstance(qid, str) or not _ID_RE.match(qid):
        raise FormError(
            f"{where}: 'id' must be lower-case letters, digits and '_' (at most 32), got {qid!r}"
        )
    where = f"{src}: question {qid!r}"
    kind = raw.get("kind")
    if kind not in KINDS:
        raise FormError(f"{where}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    _check_keys(raw, _COMMON_KEYS | _KIND_KEYS[kind], where, f"a {kind} question")

    text = _texts(raw.get("text"), where, "text")
    short = _texts(raw["label"], where, "label") if "label" in raw else None
    required = raw.get("required", True)
    if not isinstance(required, bool):
        raise FormError(f"{where}: 'required' must be true or false, got {required!r}")

    lo = _optional_number(raw, "min", where)
    hi = _optional_number(raw, "max", where)
    if lo is not None and hi is not None and lo >= hi:
        raise FormError(f"{where}: 'min' ({lo:g}) must be less than 'max' ({hi:g})")
    decimals = raw.get("decimals", DEFAULT_DECIMALS)
    if not _is_int(decimals) or not 0 <= decimals <= MAX_DECIMALS:
        raise FormError(
            f"{where}: 'decimals' must be an integer 0–{MAX_DECIMALS}, got {decimals!r}"
        )
    unit = raw.get("unit")
    if unit is not None and not (isinstance(unit, str) and unit.strip()):
        raise FormError(f"{where}: 'unit' must be a non-empty string, got {unit!r}")

    options: tuple[Option, ...] = ()
    if kind in ("choice", "multi"):
        options = _parse_options(raw.get("options"), where, kind)

    max_length: int | None = None
    if kind == "text":
        max_length = _positive_int(raw, "max_length", where, DEFAULT_TEXT_MAX_LENGTH)
    follow_up = _texts(raw["follow_up"], where, "follow_up") if "follow_up" in raw else None
    follow_up_max_length = _positive_int(
        raw, "follow_up_max_length", where, DEFAULT_TEXT_MAX_LENGTH
    )

    abnormal = None
    if "abnormal" in raw:
        abnormal = _parse_abnormal(raw["abnormal"], kind, options, where)

    return Question(
        id=qid,
        kind=kind,
        text=text,
        required=required,
        min=lo,
        max=hi,
        decimals=decimals,
        unit=unit.strip() if unit is not None else None,
        options=options,
        max_length=max_length,
        follow_up=follow_up,
        follow_up_max_length=follow_up_max_length,
        abnormal=abnormal,
        short=short,
    )


def _parse_options(raw: object, where: str, kind: str) -> tuple[Option, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise FormError(f"{where}: a {kind} question needs 'options', a list of at least two")
    options: list[Option] = []
    for number, item in enumerate(raw, 1):
        owhere = f"{where}: option #{number}"
        if not isinstance(item, Mapping):
            raise FormError(f"{owhere}: an option must be a mapping with id and text")
        _check_keys(item, frozenset({"id", "text", "exclusive"}), owhere, "an option")
        oid = item.get("id")
        if not isinstance(oid, str) or not _ID_RE.match(oid):
            raise FormError(
                f"{owhere}: 'id' must be lower-case letters, digits and '_' (at most 32), "
                f"got {oid!r}"
            )
        owhere = f"{where}: option {oid!r}"
        if any(o.id == oid for o in options):
            raise FormError(f"{owhere}: duplicate option id")
        exclusive = item.get("exclusive", False)
        if not isinstance(exclusive, bool):
            raise FormError(f"{owhere}: 'exclusive' must be true or false, got {exclusive!r}")
        if exclusive and kind != "multi":
            raise FormError(f"{owhere}: only a multi question may have an exclusive option")
        options.append(
            Option(id=oid, text=_texts(item.get("text"), owhere, "text"), exclusive=exclusive)
        )
    exclusive_ids = [o.id for o in options if o.exclusive]
    if len(exclusive_ids) > 1:
        raise FormError(
            f"{where}: at most one exclusive option is allowed, got {', '.join(exclusive_ids)}"
        )
    return tuple(options)


def _parse_abnormal(
    raw: object, kind: str, options: tuple[Option, ...], where: str
) -> AbnormalRule:
    awhere = f"{where}: 'abnormal'"
    allowed = _ABNORMAL_KEYS.get(kind)
    if allowed is None:
        raise FormError(f"{awhere}: a {kind} question cannot be abnormal")
    if not isinstance(raw, Mapping) or not raw:
        raise FormError(f"{awhere}: must be a mapping with one of {', '.join(sorted(allowed))}")
    _check_keys(raw, allowed, awhere, f"a {kind} question")

    thresholds: dict[str, float | None] = {}
    for key in ("gte", "lte", "gt", "lt"):
        value = raw.get(key)
        if value is not None and not _is_finite_number(value):
            raise FormError(f"{awhere}: {key!r} must be a number, got {value!r}")
        thresholds[key] = float(value) if value is not None else None

    in_: frozenset[str] = frozenset()
    if "in" in raw:
        ids = raw["in"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise FormError(f"{awhere}: 'in' must be a non-empty list of option ids")
        by_id = {o.id: o for o in options}
        for oid in ids:
            if oid not in by_id:
                raise FormError(f"{awhere}: 'in' names unknown option {oid!r}")
            if by_id[oid].exclusive:
                raise FormError(f"{awhere}: 'in' cannot name the exclusive option {oid!r}")
        in_ = frozenset(ids)

    for flag in ("any", "yes"):
        if flag in raw and raw[flag] is not True:
            raise FormError(f"{awhere}: {flag!r} can only be true, got {raw[flag]!r}")
    if "any" in raw and "in" in raw:
        raise FormError(f"{awhere}: use either 'any' or 'in', not both")

    return AbnormalRule(
        gte=thresholds["gte"],
        lte=thresholds["lte"],
        gt=thresholds["gt"],
        lt=thresholds["lt"],
        in_=in_,
        any="any" in raw,
        yes="yes" in raw,
    )


def _check_keys(raw: Mapping[Any, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise FormError(
            f"{where}: unknown key(s) {names} for {what} (allowed: {', '.join(sorted(allowed))})"
        )


def _texts(raw: object, where: str, key: str) -> Mapping[str, str]:
    if not isinstance(raw, Mapping):
        raise FormError(f"{where}: {key!r} must be a mapping with 'zh' and 'en' texts")
    unknown = [k for k in raw if k not in LANGS]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise FormError(f"{where}: {key!r} has unknown language(s) {names} (use zh and en)")
    missing = [
        lang for lang in LANGS if not (isinstance(raw.get(lang), str) and raw[lang].strip())
    ]
    if missing:
        raise FormError(f"{where}: {key!r} is missing the {' and '.join(missing)} text")
    return MappingProxyType({lang: raw[lang].strip() for lang in LANGS})


def _optional_number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if not _is_finite_number(value):
        raise FormError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


def _positive_int(raw: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if not _is_int(value) or value < 1:
        raise FormError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return int(value)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------
# Answers


class AnswerError(ValueError):
    """An answer the bot must refuse; `code` and `params` pick and fill the message shown."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code
        self.params: dict[str, object] = dict(params)
        detail = ", ".join(f"{k}={v!r}" for k, v in params.items())
        super().__init__(f"{code} ({detail})" if detail else code)


_NUMBER_RE: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
# Other ways people type a unit, keyed by the unit after NFKC and casefold ("℃" becomes "°c").
_UNIT_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "°c": ("摄氏度", "度", "°", "c"),
}


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def parse_number(q: Question, text: str) -> float:
    """Read a typed number the way people type it on phones (full-width, comma, "36.5℃")."""
    s = _fold(text).strip()
    if q.unit:
        unit = _fold(q.unit).strip()
        for alias in sorted((unit, *_UNIT_ALIASES.get(unit, ())), key=len, reverse=True):
            if s.endswith(alias):
                s = s[: -len(alias)].rstrip()
                break
    if s.count(",") == 1 and "." not in s:
        s = s.replace(",", ".")
    if not _NUMBER_RE.match(s):
        raise AnswerError("not_a_number")
    value = float(s) + 0.0  # + 0.0 turns -0.0 into 0.0
    if not math.isfinite(value):
        raise AnswerError("not_a_number")
    if q.min is not None and value < q.min:
        raise AnswerError("too_low", min=q.min, max=q.max)
    if q.max is not None and value > q.max:
        raise AnswerError("too_high", min=q.min, max=q.max)
    if len(s.partition(".")[2].rstrip("0")) > q.decimals:
        raise AnswerError("too_many_decimals", decimals=q.decimals)
    return value


def parse_text(q: Question, text: str, *, max_length: int | None = None) -> str:
    """Accept free text within the length limit (the question's unless `max_length` is given)."""
    if max_length is None:
        max_length = q.max_length if q.max_length is not None else DEFAULT_TEXT_MAX_LENGTH
    value = text.strip()
    if not value:
        raise AnswerError("empty")
    if len(value) > max_length:
        raise AnswerError("too_long", max_length=max_length, length=len(value))
    return value


def parse_follow_up(q: Question, text: str) -> str:
    """Accept the detail typed after answering "yes" to a yesno question."""
    return parse_text(q, text, max_length=q.follow_up_max_length)


def choose(q: Question, option_id: str) -> str:
    """Validate a pressed option, since callback data can be stale or forged."""
    if not any(o.id == option_id for o in q.options):
        raise AnswerError("unknown_option", option=option_id)
    return option_id


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
    return tuple(o.id for o in q.options if o.id in chosen)


def finish_multi(q: Question, selected: Sequence[str]) -> tuple[str, ...]:
    """Close a multi question: form order, ids checked, nothing chosen only if optional."""
    for oid in selected:
        choose(q, oid)
    chosen = set(selected)
    if any(not q.option(i).exclusive for i in chosen):  # the others win over "none"
        chosen = {i for i in chosen if not q.option(i).exclusive}
    if not chosen and q.required:
        raise AnswerError("required")
    return tuple(o.id for o in q.options if o.id in chosen)


def skip(q: Question) -> None:
    """The stored value of a skipped question; only optional questions may be skipped."""
    if q.required:
        raise AnswerError("required")
    return None


def location_answer(
    lat: float, lon: float, *, accuracy: float | None = None, live: bool = False
) -> dict[str, object]:
    """Build the stored location value; coordinates no phone can send (a forged client's) are
    an `AnswerError` ("location_out_of_range"), answered like any other bad answer."""
    try:
        validate_coordinates(lat, lon)
    except ValueError:
        raise AnswerError("location_out_of_range") from None
    return {
        "lat": float(lat),
        "lon": float(lon),
        "accuracy": float(accuracy) if accuracy is not None else None,
        "live": live,
    }


def yesno_answer(yes: bool, detail: str | None = None) -> dict[str, object]:
    """Build the stored yesno value; a detail only belongs to a "yes"."""
    return {"yes": yes, "detail": detail if yes else None}


def abnormal_reasons(form: Form, answers: Mapping[str, object]) -> list[str]:
    """Ids of the abnormal answers in form order, so organisers see who needs a follow-up."""
    return [
        q.id
        for q in form.questions
        if q.abnormal is not None and q.abnormal.matches(q, answers.get(q.id))
    ]


def format_answer(q: Question, value: object, lang: str) -> str:
    """An answer as a person reads it in a summary or report."""
    lang = normalize_lang(lang)
    if value is None:
        return _WORDS["skipped"][lang]
    if q.kind == "number":
        shown = f"{_as_number(value):.{q.decimals}f}"
        return f"{shown} {q.unit}" if q.unit else shown
    if q.kind == "choice":
        return _option_label(q, _as_str(value), lang)
    if q.kind == "multi":
        ids = _as_ids(value)
        if not ids:
            return _WORDS["skipped"][lang]
        return _LIST_SEPARATOR[lang].join(_option_label(q, i, lang) for i in ids)
    if q.kind == "yesno":
        yes, detail = _as_yesno(value)
        word = _WORDS["yes" if yes else "no"][lang]
        if not detail:
            return word
        return f"{word}（{detail}）" if lang == "zh" else f"{word} ({detail})"
    if q.kind == "photo":
        return _WORDS["photo"][lang]
    if q.kind == "location":
        lat, lon, live = _as_location(value)
        shown = f"{lat:.5f}, {lon:.5f}"
        return f"{shown} ({_WORDS['live'][lang]})" if live else shown
    return _as_str(value)


def _option_label(q: Question, option_id: str, lang: Lang) -> str:
    # An option removed from a newer version of the form still shows up in old answers.
    try:
        return q.option(option_id).label(lang)
    except KeyError:
        return option_id


def _as_number(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"expected a number answer, got {value!r}")


def _as_str(value: object) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(f"expected a string answer, got {value!r}")


def _as_ids(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(i, str) for i in value):
        return tuple(value)
    raise TypeError(f"expected a list of option ids, got {value!r}")


def _as_yesno(value: object) -> tuple[bool, str | None]:
    if isinstance(value, Mapping) and isinstance(value.get("yes"), bool):
        detail = value.get("detail")
        if detail is None or isinstance(detail, str):
            return value["yes"], detail
    raise TypeError(f"expected {{'yes': bool, 'detail': str | None}}, got {value!r}")


def _as_location(value: object) -> tuple[float, float, bool]:
    if isinstance(value, Mapping):
        lat, lon, live = value.get("lat"), value.get("lon"), value.get("live", False)
        if _is_finite_number(lat) and _is_finite_number(lon) and isinstance(live, bool):
            return _as_number(lat), _as_number(lon), live
    raise TypeError(f"expected {{'lat': float, 'lon': float, ...}}, got {value!r}")
