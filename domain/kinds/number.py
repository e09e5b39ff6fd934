"""A number typed the way people type it on phones (full-width digits, a decimal comma, the
unit after it: "36.5℃"), within the question's range and decimals.

Stored: ``float``."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Final

from domain.conversation.drafts import Draft
from domain.conversation.io import Text
from domain.i18n import _
from domain.kinds.base import (
    AbnormalRule,
    Answered,
    AnswerError,
    Asking,
    ErrorTexts,
    FormError,
    Given,
    Kind,
    Lang,
    as_number,
)
from domain.kinds.checks import is_int, optional_number

if TYPE_CHECKING:
    from domain.forms import Question

DEFAULT_DECIMALS: Final = 1
MAX_DECIMALS: Final = 6

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


def shown(value: float) -> str:
    """A limit as the hint shows it ("35.0", "42.0")."""
    return f"{value:.1f}" if value.is_integer() else str(value)


class NumberKind(Kind):
    name = "number"
    keys = frozenset({"min", "max", "decimals", "unit"})
    abnormal_keys = frozenset({"gte", "lte", "gt", "lt"})
    errors: ClassVar[ErrorTexts] = {
        "not_a_number": lambda: _("That is not a number. Please send a number, like 36.5."),
        "too_low": lambda: _("That is too low. Please send a number from {min} to {max}."),
        "too_high": lambda: _("That is too high. Please send a number from {min} to {max}."),
        "too_many_decimals": lambda: _("Please use at most {decimals} decimal place(s)."),
        "need_number": lambda: _("Please type a number."),
    }

    def parse(self, raw: Mapping[str, Any], where: str) -> dict[str, Any]:
        lo = optional_number(raw, "min", where)
        hi = optional_number(raw, "max", where)
        if lo is not None and hi is not None and lo >= hi:
            raise FormError(f"{where}: 'min' ({lo:g}) must be less than 'max' ({hi:g})")
        decimals = raw.get("decimals", DEFAULT_DECIMALS)
        if not is_int(decimals) or not 0 <= decimals <= MAX_DECIMALS:
            raise FormError(
                f"{where}: 'decimals' must be an integer 0–{MAX_DECIMALS}, got {decimals!r}"
            )
        unit = raw.get("unit")
        if unit is not None and not (isinstance(unit, str) and unit.strip()):
            raise FormError(f"{where}: 'unit' must be a non-empty string, got {unit!r}")
        return {
            "min": lo,
            "max": hi,
            "decimals": decimals,
            "unit": unit.strip() if unit is not None else None,
        }

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        text = self.prompt(q, lang)
        if q.min is not None and q.max is not None:
            unit = f" {q.unit}" if q.unit else ""
            text += "\n" + _("Send a number from {min} to {max}{unit}.").format(
                min=shown(q.min), max=shown(q.max), unit=unit
            )
        return Asking(text, self.skip_row(q, draft))

    def message(self, q: Question, given: Given, draft: Draft) -> Answered:
        if not isinstance(given, Text) or not given.text:
            raise AnswerError("need_number")
        return Answered(parse_number(q, given.text))

    def format(self, q: Question, value: object, lang: Lang) -> str:
        text = f"{as_number(value):.{q.decimals}f}"
        return f"{text} {q.unit}" if q.unit else text

    def cell_key(self, q: Question, value: object) -> Hashable | None:
        of = type(value)
        return (q.id, of, value) if of is float or of is int or of is str else None

    def abnormal(self, q: Question, rule: AbnormalRule, value: object) -> bool:
        x = as_number(value)
        return (
            (rule.gte is not None and x >= rule.gte)
            or (rule.lte is not None and x <= rule.lte)
            or (rule.gt is not None and x > rule.gt)
            or (rule.lt is not None and x < rule.lt)
        )
