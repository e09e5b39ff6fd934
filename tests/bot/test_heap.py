"""What a long-running bot process does to its garbage collector once it has started."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import gc, json
from bot.app import YOUNG_COLLECTION_THRESHOLD, settle_heap
before = gc.get_threshold()
settle_heap()
print(json.dumps({"before": before, "after": gc.get_threshold(),
                  "frozen": gc.get_freeze_count(), "young": YOUNG_COLLECTION_THRESHOLD}))
"""


def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    # In a child process: freezing and thresholds are global to the interpreter.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["frozen"] > 10_000  # the imported modules, aiogram's models among them
    assert seen["after"] == [seen["young"], *seen["before"][1:]]
    assert seen["young"] > seen["before"][0]
