"""The one check every performance shim passes before it touches a dependency's internals.

A shim (each module of `bot.shims`) names the releases it was written for and every private name
it uses. `Shim.check` is None when all of them hold; otherwise the shim steps aside (the
dependency's stock path runs) and one line says why. `DAKA_SHIMS=off` switches every shim off.
docs/shims.md lists the shims, what each buys and the tests that fail when one stops working.

It imports only the standard library, so `bot.shims.lazy_aiogram` can use it before anything
imports aiogram."""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger("daka.shims")

SWITCH = "DAKA_SHIMS"
SHIMS: list[Shim] = []  # every Shim made, once its module is imported (bot.shims.ALL)


def switched_off() -> bool:
    """`DAKA_SHIMS=off` (or 0, no, false): every shim steps aside."""
    return os.environ.get(SWITCH, "").strip().lower() in {"off", "0", "no", "false"}


def release(dist: str) -> tuple[int, ...] | None:
    """The installed release of a distribution as numbers (`2.1.9` -> (2, 1, 9)), or None."""
    try:
        text = version(dist)
    except PackageNotFoundError:
        return None
    found = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(part) for part in found.group().split(".")) if found else None


def resolve(path: str) -> object:
    """The object a dotted path names: `module:attribute.attribute...`; AttributeError or
    ImportError when any part of it is missing."""
    module_name, _, attributes = path.partition(":")
    target: object = importlib.import_module(module_name)
    for name in filter(None, attributes.split(".")):
        target = getattr(target, name)
    return target


@dataclass
class Shim:
    """A shim's contract: the releases it was written for (a distribution and a release
    prefix: `{"sqlalchemy": "2.1"}` is any 2.1.x), the private names it uses as
    `module:Class.attribute` paths, and a `probe` for what a path cannot name (an attribute
    set in `__init__`, a method's parameter, an interpreter), which returns what it found
    wrong; and what it `buys`, in a line (docs/shims.md has the figures)."""

    name: str
    written_for: Mapping[str, str]
    names: tuple[str, ...] = ()
    probe: Callable[[], Iterable[str]] | None = None
    buys: str = ""
    reason: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        SHIMS.append(self)

    def check(self) -> str | None:
        """None when the shim may run; otherwise why it must not."""
        if switched_off():
            return f"{SWITCH}=off"
        for dist, prefix in self.written_for.items():
            wanted = tuple(int(part) for part in prefix.split("."))
            installed = release(dist)
            if installed is None:
                return f"{dist} is not installed"
            if installed[: len(wanted)] != wanted:
                shown = ".".join(map(str, installed))
                return f"{dist} {shown} is not the {prefix}.x it was written for"
        problems = [gone] if (gone := self.missing(self.names)) else []
        if self.probe is not None:
            try:
                problems.extend(self.probe())
            except Exception as exc:  # a probe that cannot even run: the internals changed
                problems.append(f"its probe failed ({type(exc).__name__}: {exc})")
        return "; ".join(problems) or None

    @staticmethod
    def missing(paths: Iterable[str]) -> str:
        """Which of `paths` name nothing, as one phrase ("" when all are there)."""
        return "; ".join(f"{path} is missing" for path in paths if not _present(path))

    def enabled(self) -> bool:
        """Check; when the shim must step aside, say so in one log line."""
        reason = self.check()
        if reason is not None:
            self.step_aside(reason)
        return reason is None

    def step_aside(self, reason: str) -> None:
        """Record and log why the stock path runs: info when switched off on purpose, a
        warning when a dependency changed."""
        self.reason = reason
        level = logging.INFO if switched_off() else logging.WARNING
        log.log(level, "%s steps aside, the stock path runs: %s", self.name, reason)


def _present(path: str) -> bool:
    try:
        resolve(path)
    except (ImportError, AttributeError):
        return False
    return True
