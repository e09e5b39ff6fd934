"""Question kinds, registered in one place: each module here defines one kind (a `Kind`
subclass), registered below; forms, the check-in dialogue, summaries and exports ask the kind.

A new kind is one module here (its YAML keys, inputs, prompt, buttons, format, abnormal rule
and error texts), its name in `register(...)` below, and its texts in the catalogs."""

from __future__ import annotations

from domain.kinds.base import (
    REGISTRY,
    AbnormalRule,
    Answered,
    AnswerError,
    Asking,
    FormError,
    FormOption,
    Given,
    Kind,
    Outcome,
    Staying,
    register,
)
from domain.kinds.choice import ChoiceKind
from domain.kinds.location import LocationKind
from domain.kinds.multi import MultiKind
from domain.kinds.number import NumberKind
from domain.kinds.photo import PhotoKind
from domain.kinds.text import TextKind
from domain.kinds.yesno import YesNoKind

# In the order forms list the known kinds.
register(LocationKind, NumberKind, ChoiceKind, MultiKind, YesNoKind, TextKind, PhotoKind)


def get(name: str) -> Kind:
    """The kind called `name`; KeyError when there is none."""
    return REGISTRY[name]


def names() -> tuple[str, ...]:
    """Every kind's name, in the order they were registered."""
    return tuple(REGISTRY)


__all__ = [
    "REGISTRY",
    "AbnormalRule",
    "AnswerError",
    "Answered",
    "Asking",
    "FormError",
    "FormOption",
    "Given",
    "Kind",
    "Outcome",
    "Staying",
    "get",
    "names",
    "register",
]
