"""Schedule rules: parsing, which slots are due (daylight saving included), inheritance."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.schedule import (
    DEFAULT,
    ScheduleError,
    ScheduleSpec,
    due_slots,
    effective_schedules,
    parse_days,
    parse_times,
    slot_instant,
)


def test_times_and_days_parse_the_way_people_write_them() -> None:
    assert parse_times("12:00, 8:00,10:00,8:00") == (time(8), time(10), time(12))
    assert parse_days("mon-fri") == frozenset(range(5))
    assert parse_days("sat-mon") == frozenset({5, 6, 0})
    assert parse_days("Mon,Wed,friday") == frozenset({0, 2, 4})
    assert parse_days("all") == frozenset(range(7))
    for bad in ("25:00", "8", "", "08:60"):
        with pytest.raises(ScheduleError):
            parse_times(bad)
    with pytest.raises(ScheduleError):
        parse_days("weekdays")
    with pytest.raises(ScheduleError):
        ScheduleSpec.parse(remind="15:00", cutoff="14:00", report="16:00", days="all")


def test_a_slot_is_due_from_its_time_for_thirty_minutes() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    at = datetime(2026, 11, 30, 8, 0, tzinfo=shanghai)
    assert [s.name for s in due_slots(DEFAULT, "Asia/Shanghai", at)] == ["remind@08:00"]
    late = due_slots(DEFAULT, "Asia/Shanghai", at + timedelta(minutes=29))
    assert [(s.name, s.late) for s in late] == [("remind@08:00", True)]
    assert due_slots(DEFAULT, "Asia/Shanghai", at + timedelta(minutes=30)) == []
    assert due_slots(DEFAULT, "Asia/Shanghai", at - timedelta(seconds=1)) == []


def test_slots_follow_daylight_saving_time() -> None:
    # New York springs forward on 2026-03-08: 08:00 local is 12:00 UTC after, 13:00 UTC before.
    before = slot_instant(date(2026, 3, 7), time(8), "America/New_York")
    after = slot_instant(date(2026, 3, 8), time(8), "America/New_York")
    assert (before.hour, after.hour) == (13, 12)
    # A local time that does not exist that night (02:30) still gets one instant.
    skipped = slot_instant(date(2026, 3, 8), time(2, 30), "America/New_York")
    assert skipped.tzinfo is UTC
    spec = ScheduleSpec.parse(remind="08:00", cutoff="09:00", report="10:00", days="all")
    due = due_slots(spec, "America/New_York", datetime(2026, 3, 8, 12, 5, tzinfo=UTC))
    assert [s.name for s in due] == ["remind@08:00"]


def test_around_midnight_yesterdays_late_slot_is_still_seen() -> None:
    spec = ScheduleSpec.parse(remind="22:00", cutoff="23:00", report="23:50", days="all")
    shanghai = ZoneInfo("Asia/Shanghai")
    due = due_slots(spec, "Asia/Shanghai", datetime(2026, 12, 1, 0, 10, tzinfo=shanghai))
    assert [(s.day, s.name) for s in due] == [(date(2026, 11, 30), "report")]


def test_a_unit_inherits_its_nearest_ancestors_schedule() -> None:
    units = [(1, None), (2, 1), (3, 2), (4, 1)]
    resolved = effective_schedules(units, "org", {2: "unit:2"})
    assert resolved == {1: "org", 2: "unit:2", 3: "unit:2", 4: "org"}


def test_counted_days_skip_holidays_and_days_off() -> None:
    spec = ScheduleSpec.parse(remind="08:00", cutoff="14:00", report="15:00", days="mon-fri")
    assert spec.counts(date(2026, 11, 30))  # Monday
    assert not spec.counts(date(2026, 11, 28))  # Saturday
    assert not spec.counts(date(2026, 12, 1), frozenset({date(2026, 12, 1)}))
