"""What an export's cells say in words: the machine contract's codes (`MACHINE`: the CSV, and
the XLSX of `daka export --raw`), or the organisation's language (`words_for`: the XLSX that
/export and `daka export` make), from the gettext catalogs (domain/locales)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from domain.forms import Question
from domain.i18n import _, speaking
from domain.present.sheets import SUMMARY_HEADER
from domain.status import DayStatus

DETAIL_COLUMNS: Final[tuple[str, ...]] = (
    "date",
    "unit_path",
    "member_id",
    "name",
    "status",
    "submitted_at",
    "latitude",
    "longitude",
    "place",
    "abnormal",
    "reasons",
)
TOTAL: Final = "total"  # the unit_path of the summary's total row
ANSWER_LANG: Final = "zh"  # the machine contract's answers are read by people, in Chinese

_LIST_SEPARATOR: Final[Mapping[str, str]] = {"zh": "、", "en": ", "}


@dataclass(frozen=True)
class Words:
    """Headers, sheet names, status words, yes and no, the total row's name; `lang` is the
    language of the answers and of the question columns' headers (None: the machine contract,
    whose question columns are headed by their ids and whose reasons are question ids joined
    with ``;``)."""

    columns: tuple[str, ...]  # the detail's fixed columns, `DETAIL_COLUMNS` in order
    summary: tuple[str, ...]  # `domain.present.sheets.SUMMARY_HEADER` in order
    sheets: tuple[str, str]  # summary, detail
    status: Mapping[DayStatus, str]
    yes: str
    no: str
    total: str
    lang: str | None = None

    @property
    def answer_lang(self) -> str:
        return self.lang or ANSWER_LANG

    def header(self, questions: Sequence[Question]) -> list[str]:
        """The detail's header: the fixed columns, then one per question."""
        if self.lang is None:
            return [*self.columns, *(q.id for q in questions)]
        return [*self.columns, *(q.label(self.lang) for q in questions)]

    def reasons(self, questions: Sequence[Question]) -> Reasons:
        """How a check-in's abnormal question ids read in the `reasons` column."""
        if self.lang is None:
            return Reasons(";", {})
        return Reasons(
            _LIST_SEPARATOR.get(self.lang, ", "), {q.id: q.label(self.lang) for q in questions}
        )


@dataclass(frozen=True)
class Reasons:
    """Question ids to their labels (an id the form no longer has stays an id), joined."""

    separator: str
    labels: Mapping[str, str]

    def __call__(self, ids: Sequence[str]) -> str:
        labels = self.labels
        return self.separator.join([labels.get(i, i) for i in ids])


MACHINE: Final = Words(
    columns=DETAIL_COLUMNS,
    summary=SUMMARY_HEADER,
    sheets=("Summary", "Detail"),
    status={
        DayStatus.REPORTED: "reported",
        DayStatus.MISSING: "missing",
        DayStatus.EXCUSED: "excused",
        DayStatus.NOT_ENROLLED: "not_enrolled",
        DayStatus.OFF: "excused",  # a holiday or day off: not expected, like an excuse
        DayStatus.WITHDRAWN: "withdrawn",
    },
    yes="yes",
    no="no",
    total=TOTAL,
)


def words_for(language: str) -> Words:
    """The words of an organisation speaking `language` ("zh" or "en"). Unlike the machine
    contract, a day off reads as a day off rather than as an excuse."""
    with speaking(language):
        return Words(
            columns=(
                _("Date"),
                _("Unit"),
                _("Member ID"),
                _("Name"),
                _("Status"),
                _("Submitted at"),
                _("Latitude"),
                _("Longitude"),
                _("Place"),
                _("Abnormal"),
                _("Abnormal answers"),
            ),
            summary=(
                _("Date"),
                _("Unit"),
                _("Expected"),
                _("Reported"),
                _("Rate"),
                _("Missing"),
                _("Abnormal"),
                _("Excused or day off"),
                _("Not enrolled"),
                _("Unreachable"),
                _("Checked in on a day off"),
                _("Withdrew consent"),
            ),
            sheets=(_("Summary"), _("Detail")),
            status={
                DayStatus.REPORTED: _("checked in"),
                DayStatus.MISSING: _("not checked in"),
                DayStatus.EXCUSED: _("excused"),
                DayStatus.NOT_ENROLLED: _("not enrolled"),
                DayStatus.OFF: _("day off"),
                DayStatus.WITHDRAWN: _("withdrew consent"),
            },
            yes=_("Yes"),
            no=_("No"),
            total=_("Total"),
            lang="en" if language == "en" else "zh",
        )
