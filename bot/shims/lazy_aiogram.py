"""Build aiogram's pydantic models on first use instead of all at import.

`aiogram/types/__init__.py` calls `model_rebuild(_types_namespace=...)` on each of its ~450
Telegram types, which overrides their `defer_build=True` and compiles every validator and
serializer when aiogram is imported: about 105 MiB and 2 s, for models a check-in bot mostly
never touches (stickers, payments, games...). While `import aiogram` runs, `install()` turns those
eager rebuilds into "remember the namespace"; the types stay deferred (pydantic's own
`defer_build`) and compile when first used. Method models (SendMessage...) cannot build at class
creation while the types are deferred, so pydantic defers them too; they get the same namespace.
The patch on `BaseModel.model_rebuild` is removed as soon as the import is done.

`install()` (run by `import bot`, through `bot.shims.install`) does not import aiogram: it puts an
import hook first on `sys.meta_path` that applies the patch around aiogram's own import, whenever
that comes. A process of the composition root that never talks to Telegram (the export maker,
`python -m bot.makers`) so never loads aiogram; one that does gets its models deferred however
it reaches aiogram (`import bot.app`, `import handlers.telegram...`). It must still run before
aiogram is imported: when aiogram is already loaded, the shim steps aside with a warning (the
regression this caught: the shim lived in `handlers/telegram/`, whose `__init__` imports aiogram,
so it never deferred anything).

Written for aiogram 3.31 and pydantic 2.13 (aiogram's own test suite passes either way): `SHIM`
checks those releases and the private names used before aiogram is imported, and the aiogram
names that can only be seen after; when one is missing, aiogram's types are built at import as
usual (after the import, by replaying aiogram's own rebuild calls). With `DAKA_SHIMS=off` or
`DAKA_EAGER_AIOGRAM=1` `install()` does nothing. `LAZY` says whether it worked, once aiogram is
imported. `tests/bot/shims/test_lazy_aiogram.py` fails when a dependency upgrade silently turns
this off."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from bot.shims.compat import Shim

# What can only be looked up once aiogram is imported: the generic bases of its method models,
# which need the namespace too.
AFTER_IMPORT = ("aiogram.methods:Response", "aiogram.methods:TelegramMethod")


def _rebuild_parameters() -> list[str]:
    """`model_rebuild` is replaced by a classmethod taking and passing on these parameters."""
    from pydantic import BaseModel

    problems = []
    if not isinstance(BaseModel.__dict__.get("model_rebuild"), classmethod):
        problems.append("pydantic:BaseModel.model_rebuild is not a classmethod")
    parameters = inspect.signature(BaseModel.model_rebuild).parameters
    wanted = ("force", "raise_errors", "_parent_namespace_depth", "_types_namespace")
    problems.extend(
        f"pydantic:BaseModel.model_rebuild({name}=) is missing"
        for name in wanted
        if name not in parameters
    )
    return problems


SHIM = Shim(
    name="lazy aiogram models (bot/shims/lazy_aiogram.py)",
    written_for={"aiogram": "3.31", "pydantic": "2.13"},
    names=(
        "pydantic:BaseModel.__pydantic_complete__",
        "pydantic:BaseModel.__pydantic_parent_namespace__",
    ),
    probe=_rebuild_parameters,
    buys="aiogram's Telegram models built on first use, not all at import: memory and start-up",
)

LAZY = False  # True once aiogram has been imported with its models deferred


def install() -> bool:
    """Have aiogram's models deferred when aiogram is imported; True when that is arranged."""
    if os.environ.get("DAKA_EAGER_AIOGRAM") == "1":
        return False
    if LAZY or any(isinstance(finder, _DeferModels) for finder in sys.meta_path):
        return True  # installed already
    if not SHIM.enabled():
        return False
    if "aiogram" in sys.modules:
        SHIM.step_aside("aiogram was imported before the shim was installed")
        return False
    sys.meta_path.insert(0, _DeferModels())
    return True


class _DeferModels(importlib.abc.MetaPathFinder):
    """Finds aiogram as the other finders would, and runs its import inside `_import`."""

    def __init__(self) -> None:
        self._finding = False

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "aiogram" or self._finding:
            return None
        self._finding = True  # the others' answer, not ours again
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._finding = False
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return None  # a loader we do not know: aiogram imports as usual
        run: Callable[[ModuleType], None] = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _import(lambda: run(module))

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _import(run: Callable[[], None]) -> None:
    """aiogram's import (`run`) with its types' eager rebuilds deferred; sets `LAZY`."""
    global LAZY
    from pydantic import BaseModel

    original = BaseModel.__dict__["model_rebuild"]
    deferred: list[type[BaseModel]] = []
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
            deferred.append(cls)
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
        run()
        import aiogram.methods as methods
    finally:
        BaseModel.model_rebuild = original  # type: ignore[method-assign]

    namespace = captured.get("namespace")
    if namespace is None:  # aiogram changed how it rebuilds: nothing was deferred
        SHIM.step_aside("aiogram.types made no model_rebuild(_types_namespace=) call")
        return
    models = [
        m for m in vars(methods).values() if isinstance(m, type) and issubclass(m, BaseModel)
    ]
    if gone := SHIM.missing(AFTER_IMPORT):
        SHIM.step_aside(gone)
        for model in [*deferred, *models]:  # what aiogram/types/__init__.py asked for, now
            model.model_rebuild(_types_namespace=namespace)
        return
    for model in models:
        model.__pydantic_parent_namespace__ = namespace
    LAZY = True
