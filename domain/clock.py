"""Time is injected: the bot, the scheduler and the tests share one `Clock` protocol."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    """Something that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that tests set and move by hand; it never advances on its own."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name`, or ValueError with a readable message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def local_day(moment: datetime, tz: str) -> date:
    """The organisation's calendar day at `moment`: a check-in at 23:30 local counts for today."""
    return moment.astimezone(zone(tz)).date()


def local_now(clock: Clock, tz: str) -> datetime:
    """The clock's time in the organisation's zone."""
    return clock.now().astimezone(zone(tz))


def day_end(day: date, tz: str) -> datetime:
    """The last instant of the organisation's local `day`, in UTC."""
    start = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone(tz))
    return (start - timedelta(microseconds=1)).astimezone(UTC)


PAST_DAYS = 3660  # about ten years of an organisation's history
FUTURE_DAYS = 366  # excuses and holidays are entered ahead, up to a year


def day_window(today: date) -> tuple[date, date]:
    """The local days a person may ask about or act on, both ends included: far days mean
    nothing, and the edges of the calendar overflow `day_end`."""
    return today - timedelta(days=PAST_DAYS), today + timedelta(days=FUTURE_DAYS)


def read_day(text: str) -> date | None:
    """A day written as YYYY-MM-DD, or None when it cannot be read (any day of the calendar)."""
    word = text.strip()
    if len(word) != 10 or not word.isascii():
        return None
    try:
        return date.fromisoformat(word)
    except ValueError:
        return None


def parse_day(text: str | None, today: date) -> date | None:
    """A day written as YYYY-MM-DD (`today` when there is none), or None when it cannot be
    read or lies outside `day_window`."""
    if text is None or not text.strip():
        return today
    day = read_day(text)
    first, last = day_window(today)
    return day if day is not None and first <= day <= last else None
