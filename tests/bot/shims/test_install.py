"""Who installs the shims: `import bot` (every process of the bot, and the export maker it starts,
`python -P -m bot.makers`), never storage itself; a process that imports only storage runs the
stock paths. Neither the maker nor storage loads aiogram."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from storage.makers import BOT_ENTRY as MAKER_PROCESS
from storage.makers import make_in_child
from tests.child import ROOT, run_python

pytestmark = pytest.mark.slow  # fresh Python processes: run with -m slow (CI does)

WHAT_RUNS = """
from tests.bot.shims.running import what_runs
print(*what_runs("sqlite+aiosqlite:///:memory:"))
"""


def test_a_process_of_storage_alone_runs_the_stock_paths() -> None:
    done = run_python(WHAT_RUNS)
    assert done.stdout.split() == ["AsyncAdapt_aiosqlite_dbapi", "OpenpyxlOut", "False"]
    assert done.stderr == ""


def test_importing_bot_installs_them_without_loading_aiogram() -> None:
    done = run_python("import bot", WHAT_RUNS)
    assert done.stdout.split() == ["OneTripDBAPI", "XlsxOut", "False"]
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (MAKER_PROCESS, "OneTripDBAPI XlsxOut False"),
        ("storage.makers", "AsyncAdapt_aiosqlite_dbapi OpenpyxlOut False"),
    ],
)
def test_the_bot_makes_its_files_with_the_shims(
    entry: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's uploads start `python -P -m bot.makers` (a module name in a string, so this
    checks it exists): the shims installed, aiogram not loaded."""
    assert importlib.util.find_spec(MAKER_PROCESS) is not None
    monkeypatch.setenv(  # -P: the maker's module is found through PYTHONPATH
        "PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.delenv("DAKA_SHIMS", raising=False)
    path = tmp_path / "made.txt"
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert make_in_child("tests.bot.shims.running:report", url, {}, str(path), entry) == 1
    assert path.read_text() == expected
