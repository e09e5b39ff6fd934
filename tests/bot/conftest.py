"""CLI tests run in a temporary folder with their own SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "daka.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("BOT_USERNAME", "daka_test_bot")
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    return tmp_path
