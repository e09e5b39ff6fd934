"""aiogram's models are built on first use (bot/_aiogram_lazy.py), and still work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import bot, aiogram.types as t; from bot._aiogram_lazy import LAZY; "
    "print(LAZY, t.Message.__pydantic_complete__, t.Sticker.__pydantic_complete__)"
)


def probe(**env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_importing_aiogram_builds_no_model_until_used() -> None:
    """Fails when an aiogram or pydantic upgrade silently turns lazy building off (the bot's
    memory goal depends on it: bench/managers.py measures it)."""
    assert probe() == "True False False"


def test_the_kill_switch_builds_everything_at_import() -> None:
    assert probe(DAKA_EAGER_AIOGRAM="1") == "False True True"


def test_lazily_built_models_parse_and_serialise() -> None:
    from aiogram.methods import SendMessage
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Update

    update = Update.model_validate(
        {
            "update_id": 1,
            "callback_query": {
                "id": "q1",
                "chat_instance": "c",
                "data": "ok",
                "from": {"id": 5, "is_bot": False, "first_name": "Li"},
                "message": {
                    "message_id": 3,
                    "date": 1,
                    "chat": {"id": 5, "type": "private"},
                    "text": "体温?",
                    "reply_markup": {
                        "inline_keyboard": [[{"text": "确认", "callback_data": "ok"}]]
                    },
                },
            },
        }
    )
    assert update.callback_query is not None and update.callback_query.data == "ok"
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="确认", callback_data="ok")]]
    )
    dumped = SendMessage(chat_id=5, text="好", reply_markup=markup).model_dump(exclude_none=True)
    assert dumped["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok"
