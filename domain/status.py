"""A member's standing for one local day, and the figures managers read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DayStatus(StrEnum):
    """Where a roster entry stands for a day; `missing` is what reminders chase."""

    REPORTED = "reported"
    MISSING = "missing"
    EXCUSED = "excused"
    NOT_ENROLLED = "not_enrolled"
    OFF = "off"  # a holiday or a weekday that does not count for the member's unit
    WITHDRAWN = "withdrawn"  # withdrew consent on this day or before: never asked again


def day_status(
    *, enrolled: bool, reported: bool, excused: bool, counted: bool, withdrawn: bool = False
) -> DayStatus:
    """A check-in always shows as reported; otherwise a withdrawal of consent, excuse, day off
    and enrolment decide. The figures count a check-in on a day off of the member's unit apart,
    as `voluntary`."""
    if reported:
        return DayStatus.REPORTED
    if withdrawn:
        return DayStatus.WITHDRAWN
    if not enrolled:
        return DayStatus.NOT_ENROLLED
    if excused:
        return DayStatus.EXCUSED
    if not counted:
        return DayStatus.OFF
    return DayStatus.MISSING


@dataclass(frozen=True)
class Figures:
    """One unit's day, its subtree included. Each active roster entry is counted once, in
    `not_enrolled`, `excused`, `off`, `withdrawn` (not expected), `reported`, `missing` (the
    expected) or `voluntary` (checked in on a day off of their unit)."""

    unit_id: int | None
    name: str
    roster: int = 0
    not_enrolled: int = 0
    excused: int = 0
    off: int = 0
    reported: int = 0
    missing: int = 0
    unreachable: int = 0
    abnormal: int = 0  # abnormal check-ins, the voluntary ones included: no alert is lost
    voluntary: int = 0  # check-ins on a day off of the member's unit: not in `expected`
    withdrawn: int = 0  # withdrew consent by that day (and did not check in): not expected

    @property
    def expected(self) -> int:
        """Who should report: enrolled and not excused on a day their unit counts, and the
        excused who checked in anyway (they are back). A check-in on a day off does not count
        here: one volunteer on a weekend does not make the day 100 %."""
        return self.reported + self.missing

    @property
    def rate(self) -> float | None:
        """Share of the expected who reported; None when nobody was expected."""
        return self.reported / self.expected if self.expected else None

    @property
    def all_zero(self) -> bool:
        """Every figure a report shows is 0 (a holiday, an empty roster): the 零报告 case."""
        return not any(
            (
                self.reported,
                self.missing,
                self.abnormal,
                self.excused,
                self.not_enrolled,
                self.unreachable,
                self.voluntary,
                self.withdrawn,
            )
        )
