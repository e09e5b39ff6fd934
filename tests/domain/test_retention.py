"""How long answers are kept: `retain_days` in the form, validated when it is loaded, and the
periods and expiries `domain.retention` works out from it."""

from __future__ import annotations

from typing import Any

import pytest

from domain import retention
from domain.forms import DEFAULT_MAX_RETAIN_DAYS, FormError, load_form, parse_form
from domain.retention import Period

TRIP: dict[str, Any] = {
    "id": "trip",
    "kind": "yesno",
    "text": {"zh": "行程", "en": "Trip"},
    "follow_up": {"zh": "说明", "en": "Details"},
}


def form(*questions: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"version": 1, "title": {"zh": "表", "en": "Form"}, "questions": list(questions), **top}


def number(**keys: Any) -> dict[str, Any]:
    return {"id": "temp", "kind": "number", "text": {"zh": "体温", "en": "Temp"}, **keys}


def test_the_shipped_forms_declare_their_periods() -> None:
    health = load_form("health")
    assert health.max_retain_days == 90
    assert retention.periods(health, 30) == (
        Period("location", 14),
        Period("temperature", 30),
        Period("symptoms", 30),
        Period("exposure", 30),
        Period("exposure", 14, "detail"),
        Period("photo", 7),
    )
    assert retention.coordinate_days(health, 30) == 14
    assert retention.thresholds(health, 30) == [7, 14, 30]
    assert retention.periods(load_form("location"), 30) == (Period("location", 30),)


def test_a_form_without_a_bound_keeps_nothing_longer_than_the_default_bound() -> None:
    parsed = parse_form(form(number()), name="t")
    assert parsed.max_retain_days == DEFAULT_MAX_RETAIN_DAYS
    assert retention.periods(parsed, 10_000) == (Period("temp", DEFAULT_MAX_RETAIN_DAYS),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (form(number(retain_days=0)), r"'retain_days' must be a positive integer, got 0"),
        (form(number(retain_days="30")), r"'retain_days' must be a positive integer"),
        (form(number(retain_days=True)), r"'retain_days' must be a positive integer"),
        (
            form(number(retain_days=91), max_retain_days=90),
            r"question 'temp': 'retain_days' is 91, more than the form's max_retain_days \(90\)",
        ),
        (form(number(), max_retain_days=0), r"'max_retain_days' must be a positive integer"),
        (
            form({**TRIP, "follow_up_retain_days": 100}, max_retain_days=90),
            r"'follow_up_retain_days' is 100, more than the form's max_retain_days",
        ),
        (
            form(
                {k: v for k, v in TRIP.items() if k != "follow_up"} | {"follow_up_retain_days": 3}
            ),
            r"'follow_up_retain_days' needs a 'follow_up'",
        ),
        (
            form(number(follow_up_retain_days=3)),
            r"unknown key\(s\) 'follow_up_retain_days' for a number question",
        ),
    ],
)
def test_bad_periods_are_refused_when_the_form_is_loaded(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(FormError, match=message):
        parse_form(data, name="t")


def test_expiry_removes_what_is_over_and_says_what_it_removed() -> None:
    parsed = parse_form(
        form(number(retain_days=10), {**TRIP, "retain_days": 20, "follow_up_retain_days": 5}),
        name="t",
    )
    periods = retention.periods(parsed, 30)
    answers = {"temp": 36.5, "trip": {"yes": True, "detail": "北京"}}
    assert retention.expired(periods, 5) == []
    kept, removed = retention.expire(parsed, answers, retention.expired(periods, 6))
    assert kept == {"temp": 36.5, "trip": {"yes": True, "detail": None}}
    assert [p.name for p in removed] == ["trip.detail"]
    kept, removed = retention.expire(parsed, kept, retention.expired(periods, 11))
    assert kept == {"temp": None, "trip": {"yes": True, "detail": None}}
    assert [p.name for p in removed] == ["temp"]  # the details were already gone
    kept, removed = retention.expire(parsed, kept, retention.expired(periods, 21))
    assert kept == {"temp": None, "trip": None} and [p.name for p in removed] == ["trip"]
    assert retention.expire(parsed, kept, retention.expired(periods, 400)) == (kept, [])


def test_a_part_kept_as_long_as_its_answer_is_no_period_of_its_own() -> None:
    parsed = parse_form(form({**TRIP, "retain_days": 5, "follow_up_retain_days": 5}), name="t")
    assert retention.periods(parsed, 30) == (Period("trip", 5),)
