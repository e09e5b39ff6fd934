"""Days people type or buttons carry: read in one place, bounded to a window around the
organisation's today, so far days are refused instead of overflowing the day arithmetic."""

from __future__ import annotations

from datetime import date, timedelta

from domain.clock import FUTURE_DAYS, PAST_DAYS, day_end, day_window, parse_day

TODAY = date(2026, 11, 28)


def test_a_day_is_read_as_yyyy_mm_dd_and_blank_is_today() -> None:
    assert parse_day("2026-11-27", TODAY) == date(2026, 11, 27)
    assert parse_day(" 2026-11-27 ", TODAY) == date(2026, 11, 27)
    assert parse_day(None, TODAY) == TODAY and parse_day("  ", TODAY) == TODAY
    for unreadable in (
        "x",
        "2026-13-01",
        "2026-02-30",
        "20261127",
        "２０２６-11-27",
        "2026-11-27T",
    ):
        assert parse_day(unreadable, TODAY) is None, unreadable


def test_far_days_are_refused_and_the_window_is_safe_for_day_end() -> None:
    first, last = day_window(TODAY)
    assert (TODAY - first).days == PAST_DAYS and (last - TODAY).days == FUTURE_DAYS
    assert parse_day(first.isoformat(), TODAY) == first
    assert parse_day(last.isoformat(), TODAY) == last
    for far in ("9999-12-31", "0001-01-01", (first - timedelta(days=1)).isoformat()):
        assert parse_day(far, TODAY) is None, far
    assert day_end(last, "Pacific/Kiritimati") > day_end(first, "Pacific/Kiritimati")
