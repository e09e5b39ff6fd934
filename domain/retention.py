"""How long each answer is kept (PIPL art. 19: no longer than its purpose needs).

Three places decide, each with its own owner:

- the form (`domain/forms/*.yaml`) says per question `retain_days` (and a yesno's typed details
  `follow_up_retain_days`), and bounds every period with `max_retain_days`: whoever writes the
  form knows what each answer is for;
- the organisation's `retain_days` (`daka org set SLUG --retain-days N`, 30 for a new one) is
  the default for a question that names no period, within the form's bound;
- nothing is kept past the form's `max_retain_days`, whatever the organisation chose.

A check-in of local day D loses an answer of period P once D is more than P days before the
organisation's today: "kept for 14 days" keeps the 14 days before today. The day's status,
whether it was abnormal and its place name (province and city) stay: the figures of past days
count them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.forms import Form, Question

COORDINATES = "location"  # the kind whose period the check-in's own coordinates follow


@dataclass(frozen=True, slots=True)
class Period:
    """How many days one answer (or one part of it) is kept."""

    question: str
    days: int
    part: str | None = None  # None: the whole answer; else a part the kind names ("detail")

    @property
    def name(self) -> str:
        """As the audit trail and the logs name it: "temperature", "exposure.detail"."""
        return self.question if self.part is None else f"{self.question}.{self.part}"


def question_days(form: Form, q: Question, default_days: int) -> int:
    """Days the whole answer to `q` is kept: its own period or the organisation's, within the
    form's bound."""
    return max(1, min(q.retain_days or default_days, form.max_retain_days))


def periods(form: Form, default_days: int) -> tuple[Period, ...]:
    """Every answer's period, in form order; a part kept less than its answer follows it."""
    found: list[Period] = []
    for q in form.questions:
        whole = question_days(form, q, default_days)
        found.append(Period(q.id, whole))
        for part, days in q.kind_of.retention_parts(q).items():
            if days < whole:
                found.append(Period(q.id, days, part))
    return tuple(found)


def coordinate_days(form: Form, default_days: int) -> int:
    """Days a check-in's coordinates (latitude, longitude, accuracy) are kept: those of the
    form's location answer (the shortest, with several), else the organisation's default."""
    days = [question_days(form, q, default_days) for q in form.questions if q.kind == COORDINATES]
    return min(days) if days else min(default_days, form.max_retain_days)


def thresholds(form: Form, default_days: int) -> list[int]:
    """The distinct periods of a form, shortest first: the ages at which something goes."""
    found = {p.days for p in periods(form, default_days)}
    found.add(coordinate_days(form, default_days))
    return sorted(found)


def age(day: date, today: date) -> int:
    """Days since `day` (0 for today)."""
    return (today - day).days


def expired(found: Sequence[Period], days_old: int) -> list[Period]:
    """The periods over at this age."""
    return [p for p in found if days_old > p.days]


def expire(
    form: Form | None, answers: Mapping[str, Any], over: Sequence[Period]
) -> tuple[dict[str, Any], list[Period]]:
    """`answers` without what the periods `over` cover, and which of them actually removed
    something (an answer already cleared, or skipped, removes nothing). A part of an answer
    needs the form its kind is read from (None: a form no longer shipped, whole answers only)."""
    kept = dict(answers)
    removed: list[Period] = []
    for period in over:
        value = kept.get(period.question)
        if value is None:
            continue
        if period.part is None:
            kept[period.question] = None
            removed.append(period)
            continue
        if form is None:
            continue
        q = form.question(period.question)
        without = q.kind_of.without_part(q, value, period.part)
        if without != value:
            kept[period.question] = without
            removed.append(period)
    return kept, removed
