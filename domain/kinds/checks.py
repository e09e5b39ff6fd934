"""Checks of form YAML that forms and kinds share: keys, ids, texts in both languages, numbers,
and the `abnormal:` rule. Every failure is a `FormError` naming where it is."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from domain.kinds.base import LANGS, AbnormalRule, FormError, FormOption

if TYPE_CHECKING:
    from domain.kinds.base import Kind

# Ids travel in Telegram callback data (64 bytes at most), so keep them short and plain.
ID_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_THRESHOLDS: Final = ("gte", "lte", "gt", "lt")


def check_keys(raw: Mapping[Any, Any], allowed: frozenset[str], where: str, what: str) -> None:
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise FormError(
            f"{where}: unknown key(s) {names} for {what} (allowed: {', '.join(sorted(allowed))})"
        )


def check_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise FormError(
            f"{where}: 'id' must be lower-case letters, digits and '_' (at most 32), got {value!r}"
        )
    return value


def texts(raw: object, where: str, key: str) -> Mapping[str, str]:
    if not isinstance(raw, Mapping):
        raise FormError(f"{where}: {key!r} must be a mapping with 'zh' and 'en' texts")
    unknown = [k for k in raw if k not in LANGS]
    if unknown:
        names = ", ".join(repr(k) for k in unknown)
        raise FormError(f"{where}: {key!r} has unknown language(s) {names} (use zh and en)")
    missing = [
        lang for lang in LANGS if not (isinstance(raw.get(lang), str) and raw[lang].strip())
    ]
    if missing:
        raise FormError(f"{where}: {key!r} is missing the {' and '.join(missing)} text")
    return MappingProxyType({lang: raw[lang].strip() for lang in LANGS})


def optional_number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if not is_finite_number(value):
        raise FormError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


def positive_int(raw: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if not is_int(value) or value < 1:
        raise FormError(f"{where}: {key!r} must be a positive integer, got {value!r}")
    return int(value)


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_abnormal(
    raw: object, kind: Kind, options: Sequence[FormOption], where: str
) -> AbnormalRule:
    """An `abnormal:` rule of the keys `kind` allows (thresholds, `in` option ids, `any`,
    `yes`)."""
    awhere = f"{where}: 'abnormal'"
    allowed = kind.abnormal_keys
    if not allowed:
        raise FormError(f"{awhere}: a {kind.name} question cannot be abnormal")
    if not isinstance(raw, Mapping) or not raw:
        raise FormError(f"{awhere}: must be a mapping with one of {', '.join(sorted(allowed))}")
    check_keys(raw, allowed, awhere, f"a {kind.name} question")

    thresholds: dict[str, float | None] = {}
    for key in _THRESHOLDS:
        value = raw.get(key)
        if value is not None and not is_finite_number(value):
            raise FormError(f"{awhere}: {key!r} must be a number, got {value!r}")
        thresholds[key] = float(value) if value is not None else None

    in_: frozenset[str] = frozenset()
    if "in" in raw:
        ids = raw["in"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise FormError(f"{awhere}: 'in' must be a non-empty list of option ids")
        by_id = {o.id: o for o in options}
        for oid in ids:
            if oid not in by_id:
                raise FormError(f"{awhere}: 'in' names unknown option {oid!r}")
            if by_id[oid].exclusive:
                raise FormError(f"{awhere}: 'in' cannot name the exclusive option {oid!r}")
        in_ = frozenset(ids)

    for flag in ("any", "yes"):
        if flag in raw and raw[flag] is not True:
            raise FormError(f"{awhere}: {flag!r} can only be true, got {raw[flag]!r}")
    if "any" in raw and "in" in raw:
        raise FormError(f"{awhere}: use either 'any' or 'in', not both")

    return AbnormalRule(
        gte=thresholds["gte"],
        lte=thresholds["lte"],
        gt=thresholds["gt"],
        lt=thresholds["lt"],
        in_=in_,
        any="any" in raw,
        yes="yes" in raw,
    )
