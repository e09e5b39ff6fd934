"""Where the member is: a location shared from the phone (not forwarded, on Earth).

Stored: ``{"lat": float, "lon": float, "accuracy": float | None, "live": bool}``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from domain.conversation.drafts import Draft
from domain.conversation.io import Ask, Location
from domain.geo import validate_coordinates
from domain.i18n import _
from domain.kinds.base import Answered, AnswerError, Asking, ErrorTexts, Given, Kind, Lang
from domain.kinds.checks import is_finite_number

if TYPE_CHECKING:
    from domain.forms import Question

LIVE: Final = {"zh": "实时", "en": "live"}


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


def as_location(value: object) -> tuple[float, float, bool]:
    if isinstance(value, Mapping):
        lat, lon, live = value.get("lat"), value.get("lon"), value.get("live", False)
        if is_finite_number(lat) and is_finite_number(lon) and isinstance(live, bool):
            return float(lat), float(lon), live  # type: ignore[arg-type]
    raise TypeError(f"expected {{'lat': float, 'lon': float, ...}}, got {value!r}")


class LocationKind(Kind):
    name = "location"
    errors: ClassVar[ErrorTexts] = {
        # How to send one is the channel's to say (its picker: Telegram's button, WeCom's menu).
        "need_location": lambda: _("I need your location."),
        "forwarded_location": lambda: _(
            "A forwarded location cannot be used. Please share your own, current one."
        ),
        "location_out_of_range": lambda: _(
            "That location is not a place on Earth. Please share your current location."
        ),
    }

    def ask(self, q: Question, draft: Draft, lang: Lang) -> Asking:
        """The prompt alone: the channel adds how to send a location with its picker."""
        return Asking(self.prompt(q, lang), ask=Ask.LOCATION)

    def message(self, q: Question, given: Given, draft: Draft) -> Answered:
        if not isinstance(given, Location):
            raise AnswerError("need_location")
        if given.forwarded:
            raise AnswerError("forwarded_location")
        return Answered(
            location_answer(
                given.latitude, given.longitude, accuracy=given.accuracy, live=given.live
            )
        )

    def format(self, q: Question, value: object, lang: Lang) -> str:
        lat, lon, live = as_location(value)
        shown = f"{lat:.5f}, {lon:.5f}"
        return f"{shown} ({LIVE[lang]})" if live else shown

    def cell(self, q: Question, value: object, lang: Lang = "zh") -> str:
        """ "lat, lon" without "(实时)": the spreadsheet has the exact values in its own
        columns."""
        if type(value) is dict:  # the common well-formed answer, without checks and copies
            lat, lon = value.get("lat"), value.get("lon")
            if type(lat) is float and type(lon) is float and math.isfinite(lat + lon):
                return f"{lat:.5f}, {lon:.5f}"
        if isinstance(value, Mapping):
            value = {**value, "live": False}
        return self.format(q, value, lang)
