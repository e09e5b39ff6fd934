"""Build aiogram's pydantic models on first use instead of all at import.

`aiogram/types/__init__.py` calls `model_rebuild(_types_namespace=...)` on each of its ~450
Telegram types, which overrides their `defer_build=True` and compiles every validator and
serializer when aiogram is imported: about 105 MiB and 2 s, for models a check-in bot mostly
never touches (stickers, payments, games...). While `import aiogram` runs, `install()` turns those
eager rebuilds into "remember the namespace"; the types stay deferred (pydantic's own
`defer_build`) and compile when first used. Method models (SendMessage...) cannot build at class
creation while the types are deferred, so pydantic defers them too; they get the same namespace.
The patch on `BaseModel.model_rebuild` is removed as soon as the import is done.

Checked with aiogram 3.31 and pydantic 2.13 (aiogram's own test suite passes either way); with
other versions, with `DAKA_EAGER_AIOGRAM=1`, or when aiogram was imported first, `install()`
does nothing and aiogram builds everything at import as usual. `tests/bot/test_lazy_types.py`
fails when a dependency upgrade silently turns this off."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from typing import Any

TESTED = {"aiogram": "3.31.", "pydantic": "2.13."}


def install() -> bool:
    """Import aiogram with deferred models; True when lazy mode is active."""
    if "aiogram" in sys.modules or os.environ.get("DAKA_EAGER_AIOGRAM") == "1":
        return False
    if not all(version(dist).startswith(prefix) for dist, prefix in TESTED.items()):
        return False
    from pydantic import BaseModel

    original = BaseModel.__dict__["model_rebuild"]
    captured: dict[str, Any] = {}

    def model_rebuild(
        cls: type[BaseModel],
        *,
        force: bool = False,
        raise_errors: bool = True,
        _parent_namespace_depth: int = 2,
        _types_namespace: Any = None,
    ) -> bool | None:
        if (
            _types_namespace is not None
            and not force
            and cls.__module__.startswith("aiogram.types.")
            and not cls.__pydantic_complete__
        ):
            captured["namespace"] = _types_namespace
            cls.__pydantic_parent_namespace__ = _types_namespace  # used by the lazy build
            return None
        depth = _parent_namespace_depth + 1 if _parent_namespace_depth > 0 else 0  # our frame
        result: bool | None = original.__func__(
            cls,
            force=force,
            raise_errors=raise_errors,
            _parent_namespace_depth=depth,
            _types_namespace=_types_namespace,
        )
        return result

    BaseModel.model_rebuild = classmethod(model_rebuild)  # type: ignore[method-assign,assignment]
    try:
        import aiogram  # noqa: F401
        import aiogram.methods as methods
        from aiogram.methods.base import Response, TelegramMethod
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]

    namespace = captured.get("namespace")
    if namespace is None:  # aiogram changed how it rebuilds: nothing was deferred
        return False
    for name in methods.__all__:
        model = getattr(methods, name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            model.__pydantic_parent_namespace__ = namespace
    Response.__pydantic_parent_namespace__ = namespace
    TelegramMethod.__pydantic_parent_namespace__ = namespace
    return True


LAZY = install()
