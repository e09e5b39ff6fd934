"""Daka's performance shims over dependencies' internals, all in this one package.

Each module here holds one shim's code and its `Shim` declaration (`SHIM`: the releases it was
written for, every private name it uses, what it buys); `ALL` lists them. Each checks what it
relies on the first time it is used and otherwise steps aside for the dependency's own code,
saying so in one line of the `daka.shims` log; `DAKA_SHIMS=off` makes them all step aside.
docs/shims.md says what each buys, measured, and what it relies on.

The composition root installs them, since nothing below it may import `bot/`:

- `install()` (run by `import bot`, so by every process of the root, its tests and
  `python -m bot.makers`) puts in place the three that work below the root: the lazy aiogram
  models (an import hook, before aiogram is imported), the one-trip SQLite adapter (a hook of
  `storage.db`) and the XLSX row splice (a hook of `domain.present.sheets`). A process that only
  imports storage (`python -m storage.makers`, `alembic`) runs the stock paths.
- `bot.app` calls the other one where it belongs: `heap.settle_heap` once start-up is done."""

from __future__ import annotations

from typing import Final

from bot.shims import heap, lazy_aiogram, sqlite, xlsx_splice
from bot.shims.compat import SWITCH, Shim, switched_off

__all__ = ["ALL", "SWITCH", "Shim", "install", "switched_off"]

ALL: Final[tuple[Shim, ...]] = (
    lazy_aiogram.SHIM,
    sqlite.SHIM,
    xlsx_splice.SHIM,
    heap.SHIM,
)


def install() -> None:
    """Put the shims that work below the root in place: each checks itself when first used
    (aiogram's import, the first SQLite engine, the first workbook). Idempotent."""
    from domain.present.sheets import use_xlsx_writer
    from storage.db import use_aiosqlite_module

    lazy_aiogram.install()  # first: nothing below may have imported aiogram yet
    use_aiosqlite_module(sqlite.one_trip_module)
    use_xlsx_writer(xlsx_splice.spliced_out)
