"""Schedules: which local days count, when reminders, the missing list and the report are due.

All times are local to the organisation; instants are computed through `zoneinfo`, so a slot on
a day with a daylight-saving change lands on the right UTC moment (a skipped local time moves
forward, a repeated one is taken the first time)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar

from domain.clock import zone

T = TypeVar("T")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GRACE = timedelta(minutes=30)
LATE = timedelta(minutes=1)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class ScheduleError(ValueError):
    """A schedule setting that cannot be understood; the message says which and why."""


def parse_time(text: str) -> time:
    """ "8:00" or "08:00" -> 08:00."""
    match = _TIME.match(text.strip())
    if not match:
        raise ScheduleError(f"{text!r} is not a time like 08:00")
    return time(int(match.group(1)), int(match.group(2)))


def parse_times(text: str) -> tuple[time, ...]:
    """A comma-separated list of times, sorted, without repeats; at least one."""
    times = sorted({parse_time(part) for part in text.split(",") if part.strip()})
    if not times:
        raise ScheduleError("give at least one reminder time, like 08:00,10:00")
    return tuple(times)


def parse_days(text: str) -> frozenset[int]:
    """Weekdays as "mon-fri", "mon,wed,fri", "sat-sun" or "all" -> {0..6} (Monday is 0)."""
    text = text.strip().lower()
    if text in ("all", "daily", "*"):
        return frozenset(range(7))
    days: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            first, last = (p.strip() for p in part.split("-", 1))
            start, end = _weekday(first), _weekday(last)
            span = range(start, end + 1) if start <= end else [*range(start, 7), *range(end + 1)]
            days.update(span)
        else:
            days.add(_weekday(part))
    if not days:
        raise ScheduleError("give the days that count, like mon-fri")
    return frozenset(days)


def _weekday(name: str) -> int:
    key = name[:3]
    if key not in WEEKDAYS:
        raise ScheduleError(f"{name!r} is not a weekday (mon, tue, ... sun)")
    return WEEKDAYS.index(key)


def format_days(days: Iterable[int]) -> str:
    """The canonical text form stored in the database: "mon,tue,wed"."""
    return ",".join(WEEKDAYS[d] for d in sorted(set(days)))


def format_times(times: Iterable[time]) -> str:
    return ",".join(t.strftime("%H:%M") for t in times)


@dataclass(frozen=True)
class ScheduleSpec:
    """One organisation's (or unit's) schedule, parsed."""

    remind: tuple[time, ...]
    cutoff: time
    report: time
    days: frozenset[int]

    @classmethod
    def parse(cls, *, remind: str, cutoff: str, report: str, days: str) -> ScheduleSpec:
        spec = cls(
            remind=parse_times(remind),
            cutoff=parse_time(cutoff),
            report=parse_time(report),
            days=parse_days(days),
        )
        if spec.remind[-1] > spec.cutoff:
            raise ScheduleError("reminders must come before the cutoff")
        return spec

    def counts(self, day: date, holidays: frozenset[date] = frozenset()) -> bool:
        """Whether members are expected to check in on `day`."""
        return day.weekday() in self.days and day not in holidays

    def slots(self) -> list[tuple[str, time]]:
        """Named slots of a day, in time order: remind@HH:MM…, cutoff, report."""
        named = [(f"remind@{t:%H:%M}", t) for t in self.remind]
        named += [("cutoff", self.cutoff), ("report", self.report)]
        return sorted(named, key=lambda item: item[1])


DEFAULT = ScheduleSpec.parse(
    remind="08:00,10:00,12:00", cutoff="14:00", report="15:00", days="mon,tue,wed,thu,fri,sat,sun"
)


def slot_instant(day: date, at: time, tz: str) -> datetime:
    """The UTC instant of local `at` on `day`."""
    local = datetime.combine(day, at).replace(tzinfo=zone(tz))
    return local.astimezone(UTC)


@dataclass(frozen=True)
class DueSlot:
    day: date
    name: str
    at: datetime
    late: bool


def due_slots(
    spec: ScheduleSpec, tz: str, now: datetime, *, grace: timedelta = GRACE
) -> list[DueSlot]:
    """Slots whose time has come within the last `grace` (yesterday's too, around midnight).

    A slot missed by more than the grace period is not run late: a reminder at 16:00 for an 08:00
    slot would be noise. The caller skips slots already claimed."""
    local_today = now.astimezone(zone(tz)).date()
    due = []
    for day in (local_today - timedelta(days=1), local_today):
        for name, at in spec.slots():
            instant = slot_instant(day, at, tz)
            if instant <= now < instant + grace:
                due.append(DueSlot(day=day, name=name, at=instant, late=now - instant > LATE))
    return due


def effective_schedules(
    units: Iterable[tuple[int, int | None]], default: T, overrides: Mapping[int, T]
) -> dict[int, T]:
    """Each unit's schedule: its own override, else its nearest ancestor's, else the default."""
    parent_of = dict(units)
    result: dict[int, T] = {}

    def resolve(unit_id: int) -> T:
        if unit_id not in result:
            parent = parent_of.get(unit_id)
            if unit_id in overrides:
                result[unit_id] = overrides[unit_id]
            elif parent is not None:
                result[unit_id] = resolve(parent)
            else:
                result[unit_id] = default
        return result[unit_id]

    for unit_id in parent_of:
        resolve(unit_id)
    return result
