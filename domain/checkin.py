"""What a finished set of answers means: abnormal or not, where it was sent from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.forms import Form, abnormal_reasons
from domain.geo import Geofence, Place

GEOFENCE_REASON = "geofence"


@dataclass(frozen=True)
class Facts:
    """Derived facts stored beside the answers."""

    abnormal: bool
    reasons: list[str]
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    live: bool = False
    place: Place | None = None
    outside_geofence: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def derive(
    form: Form,
    answers: Mapping[str, Any],
    *,
    geofence: Geofence | None,
    resolve: Callable[[float, float], Place | None],
) -> Facts:
    """Abnormal reasons (form rules, then the geofence) and the place of the first location."""
    reasons = abnormal_reasons(form, answers)
    location = next(
        (answers[q.id] for q in form.questions if q.kind == "location" and answers.get(q.id)),
        None,
    )
    if not isinstance(location, Mapping):
        return Facts(abnormal=bool(reasons), reasons=reasons)
    lat, lon = float(location["lat"]), float(location["lon"])
    outside = geofence is not None and not geofence.contains(lat, lon)
    if outside:
        reasons = [*reasons, GEOFENCE_REASON]
    accuracy = location.get("accuracy")
    return Facts(
        abnormal=bool(reasons),
        reasons=reasons,
        latitude=lat,
        longitude=lon,
        accuracy_m=float(accuracy) if accuracy is not None else None,
        live=bool(location.get("live")),
        place=resolve(lat, lon),
        outside_geofence=outside,
    )
