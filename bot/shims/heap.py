"""Heap settling: what start-up built is taken out of the garbage collector's sight, and young
collections run every 20,000 new objects instead of every 700.

Start-up's objects live as long as the process, yet every full collection walked all of them
again (400 members at once: one every 0.7 s at 0.11 s each, an eighth of the bot's CPU; 0.01 s
each once frozen). An update allocates thousands of objects (models, rows, SQL contexts) that die
with it, so CPython collected the young generation several times per update, for nothing; the
older generations keep their defaults. `bot.app` calls `settle_heap` once everything is built,
just before polling or scheduling starts. Thresholds mean this only in CPython's generational
collector of 3.11 to 3.13 (3.14 collects the old generations incrementally): `SHIM` checks."""

from __future__ import annotations

import gc
import sys

from bot.shims.compat import Shim

YOUNG_COLLECTION_THRESHOLD = 20_000


def _generational_collector() -> list[str]:
    """Thresholds mean what `settle_heap` assumes only in CPython's generational collector of
    3.11 to 3.13."""
    if sys.implementation.name == "cpython" and (3, 11) <= sys.version_info[:2] <= (3, 13):
        return []
    return [
        f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]} is not "
        "CPython 3.11 to 3.13"
    ]


SHIM = Shim(
    name="heap settling (bot/shims/heap.py)",
    written_for={},
    names=("gc:freeze", "gc:get_threshold", "gc:set_threshold"),
    probe=_generational_collector,
    buys="no full collection walks start-up's objects, and a young one runs every 20,000 objects",
)


def settle_heap() -> None:
    """Freeze what exists now and raise the young generation's threshold; nothing when `SHIM`
    steps aside."""
    if not SHIM.enabled():
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
