"""Option keys: what a button sends back, packed as `prefix:field:field` with bounded fields.

The wire format is aiogram's `CallbackData` one (so buttons already in Telegram chats keep
working) without aiogram: a key is untrusted input, and `Key.unpack` refuses anything that does
not fit the fields (wrong prefix, count, type or bounds) with `BadKey`. At most 64 bytes
(Telegram's callback data limit; WeCom's card keys allow more)."""

from __future__ import annotations

from enum import Enum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

SEPARATOR = ":"
MAX_KEY_BYTES = 64


class BadKey(ValueError):
    """A key that is not one of ours (forged, stale after an upgrade, or truncated)."""


class Key(BaseModel):
    """Subclass with `prefix=`: `class AnswerKey(Key, prefix="ans"): draft: str ...`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    prefix: ClassVar[str]

    def __init_subclass__(cls, prefix: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if prefix is not None:
            if SEPARATOR in prefix:
                raise ValueError(f"a key prefix cannot contain {SEPARATOR!r}: {prefix!r}")
            cls.prefix = prefix

    def pack(self) -> str:
        parts = [self.prefix]
        for name, value in self.model_dump(mode="python").items():
            encoded = _encode(value)
            if SEPARATOR in encoded:
                raise ValueError(f"{name}={encoded!r} contains {SEPARATOR!r}")
            parts.append(encoded)
        packed = SEPARATOR.join(parts)
        if len(packed.encode()) > MAX_KEY_BYTES:
            raise ValueError(f"key longer than {MAX_KEY_BYTES} bytes: {packed!r}")
        return packed

    @classmethod
    def matches(cls, key: str) -> bool:
        """Has this key's prefix (whether or not the rest unpacks)."""
        return key == cls.prefix or key.startswith(cls.prefix + SEPARATOR)

    @classmethod
    def unpack(cls, key: str) -> Self:
        prefix, *parts = key.split(SEPARATOR)
        names = list(cls.model_fields)
        if prefix != cls.prefix or len(parts) != len(names):
            raise BadKey(key)
        payload: dict[str, Any] = {}
        for name, raw in zip(names, parts, strict=True):
            field = cls.model_fields[name]
            if raw == "" and not field.is_required() and field.default != "":
                payload[name] = field.default
            else:
                payload[name] = raw
        try:
            return cls(**payload)
        except (ValidationError, TypeError, ValueError) as error:
            raise BadKey(key) from error


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(int(value))
    return str(value)
