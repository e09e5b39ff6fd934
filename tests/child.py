"""Run Python in a fresh interpreter: shims decide once per process, at import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Put first in a child's code: the installed releases, as `storage.compat` reads them, except
# those named in the RELEASES environment variable ("aiogram=3.32.0,sqlalchemy=2.2.0").
PRETEND_RELEASES = """
import importlib.metadata as _metadata, os as _os
_real = _metadata.version
_pretend = dict(p.split("=") for p in filter(None, _os.environ.get("RELEASES", "").split(",")))
_metadata.version = lambda dist: _pretend.get(dist) or _real(dist)
"""


def run_python(*code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the parts of `code` (each dedented) one after the other in a child interpreter at
    the repository root; fails the test if the child fails."""
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(textwrap.dedent(part) for part in code)],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DAKA_SHIMS", "RELEASES"}},
            "PYTHONPATH": str(ROOT),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done
