"""What a long-running bot process does to its garbage collector once it has started."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.child import run_python

pytestmark = pytest.mark.slow  # fresh Python processes: run with -m slow (CI does)

SCRIPT = """
import gc, json
import bot.app  # what the bot has built when it settles its heap
from bot.shims.heap import YOUNG_COLLECTION_THRESHOLD, settle_heap
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


def test_outside_cpython_3_11_to_3_13_the_collector_is_left_alone() -> None:
    done = run_python(
        """
        import gc, json, sys
        from bot.shims.heap import settle_heap
        before = gc.get_threshold()
        sys.version_info = (3, 14, 0, "final", 0)  # as a 3.14 interpreter would report
        settle_heap()
        print(json.dumps({"same": gc.get_threshold() == before, "frozen": gc.get_freeze_count()}))
        """
    )
    assert json.loads(done.stdout) == {"same": True, "frozen": 0}
    assert "cpython 3.14 is not CPython 3.11 to 3.13" in done.stderr
