"""aiogram's models are built on first use (bot/shims/lazy_aiogram.py), and still work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.child import PRETEND_RELEASES, ROOT, run_python

pytestmark = pytest.mark.slow  # fresh Python processes: run with -m slow (CI does)

PROBE = (
    "import bot, aiogram.types as t; from bot.shims.lazy_aiogram import LAZY; "
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


USE_AIOGRAM = """
import bot, aiogram.types as t
from aiogram.methods import SendMessage
from aiogram.methods.base import Response
from bot.shims.lazy_aiogram import LAZY

message = {"message_id": 3, "date": 1, "chat": {"id": 5, "type": "private"}, "text": "到"}
update = t.Update.model_validate({"update_id": 1, "message": message})
sent = Response[t.Message].model_validate({"ok": True, "result": {**message, "text": "好"}})
dumped = SendMessage(chat_id=5, text="好").model_dump(exclude_none=True)
print(LAZY, t.Sticker.__pydantic_complete__, update.message.text, sent.result.text, dumped["text"])
"""


def test_another_aiogram_release_builds_models_at_import_and_they_work() -> None:
    done = run_python(PRETEND_RELEASES, USE_AIOGRAM, RELEASES="aiogram=3.32.0")
    assert done.stdout.split() == ["False", "True", "到", "好", "好"]
    assert "aiogram 3.32.0 is not the 3.31.x it was written for" in done.stderr


def test_when_aiogram_lacks_a_name_its_models_are_built_after_all() -> None:
    """A name that can only be checked after aiogram's import is gone: the types deferred so
    far are built as aiogram itself would have built them, and everything still works."""
    done = run_python(
        """
        import importlib.abc, importlib.machinery, sys

        class DropResponse(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "aiogram":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    del sys.modules["aiogram.methods"].Response

                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, DropResponse())
        """,
        USE_AIOGRAM,
    )
    assert done.stdout.split() == ["False", "True", "到", "好", "好"]
    assert "aiogram.methods:Response is missing" in done.stderr


def test_on_the_locked_releases_models_stay_deferred_and_work() -> None:
    done = run_python(USE_AIOGRAM)
    assert done.stdout.split() == ["True", "False", "到", "好", "好"]
    assert done.stderr == ""


def test_reaching_aiogram_through_the_telegram_adapter_defers_its_models_too() -> None:
    """Regression: the shim lived in handlers/telegram/, whose `__init__` imports aiogram, so
    aiogram was always imported before it and nothing was deferred, without a word. Now
    `import bot` only installs an import hook: however aiogram is reached, it is deferred."""
    done = run_python(
        """
        import sys
        import bot
        print("aiogram" in sys.modules)
        import handlers.telegram
        import aiogram.types as t
        from bot.shims.lazy_aiogram import LAZY
        print(LAZY, t.Sticker.__pydantic_complete__)
        """
    )
    assert done.stdout.split() == ["False", "True", "False"]
    assert done.stderr == ""


def test_aiogram_imported_before_the_shim_is_said() -> None:
    done = run_python(
        """
        import aiogram.types as t
        import bot
        from bot.shims.lazy_aiogram import LAZY
        print(LAZY, t.Sticker.__pydantic_complete__)
        """
    )
    assert done.stdout.split() == ["False", "True"]
    assert "aiogram was imported before the shim was installed" in done.stderr
