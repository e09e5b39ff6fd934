"""What a process runs, for tests/bot/shims/test_install.py's children: imports storage only."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from domain.present.sheets import Layout, xlsx_out
from storage.db import create_engine


def what_runs(url: str) -> tuple[str, str, bool]:
    """The DBAPI module of an engine on `url`, the workbook writer, and whether aiogram is
    loaded, in this process."""

    async def dbapi() -> str:
        engine = create_engine(url)
        name = type(engine.dialect.dbapi).__name__
        await engine.dispose()
        return name

    with xlsx_out(io.BytesIO(), Layout(["a"]), [], []) as book:
        writer = type(book).__name__
    return asyncio.run(dbapi()), writer, "aiogram" in sys.modules


def report(url: str, args: Mapping[str, Any], path: str) -> int:
    """A maker (`storage.makers`) that writes `what_runs` into its file."""
    Path(path).write_text(" ".join(map(str, what_runs(url))))
    return 1
