"""The bot's profile as Telegram keeps it: getMe, the command menus, the menu button, and the
calls that only have to be valid (sendChatAction, setMyDescription, pinChatMessage, ...)."""

from __future__ import annotations

import json
import re
from typing import Any

from .params import bad
from .records import JSON
from .state import ServerState

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
#: methods that answer ``true`` and change nothing a test looks at
TRUE_METHODS = (
    "close",
    "logOut",
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setMyDefaultAdministratorRights",
    "pinChatMessage",
    "unpinChatMessage",
    "unpinAllChatMessages",
    "setMessageReaction",
)


class BotProfile(ServerState):
    """getMe, commands, menu buttons, chat actions."""

    def commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command menu the bot set for ``scope`` and ``language_code``."""
        return list(self._commands.get(_commands_key(scope, language_code), []))

    async def _m_true(self, params: JSON) -> bool:
        return True

    async def _m_get_me(self, params: JSON) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_set_my_commands(self, params: JSON) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad("commands must be an Array")
        if len(commands) > 100:
            raise bad("too many commands")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(
                str(command.get("command", ""))
            ):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad("command description is invalid")
        key = _commands_key(params.get("scope"), params.get("language_code"))
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _m_delete_my_commands(self, params: JSON) -> bool:
        key = _commands_key(params.get("scope"), params.get("language_code"))
        self._commands.pop(key, None)
        return True

    async def _m_get_my_commands(self, params: JSON) -> list[JSON]:
        key = _commands_key(params.get("scope"), params.get("language_code"))
        return list(self._commands.get(key, []))

    async def _m_set_chat_menu_button(self, params: JSON) -> bool:
        chat_id = params.get("chat_id")
        button = params.get("menu_button")
        key = chat_id if isinstance(chat_id, int) else None
        self.menu_buttons[key] = button if isinstance(button, dict) else {"type": "default"}
        return True

    async def _m_get_chat_menu_button(self, params: JSON) -> JSON:
        chat_id = params.get("chat_id")
        key = chat_id if isinstance(chat_id, int) else None
        found = self.menu_buttons.get(key) or self.menu_buttons.get(None)
        return found or {"type": "default"}

    async def _m_send_chat_action(self, params: JSON) -> bool:
        self._require_chat(params)
        if str(params.get("action")) not in _CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True


def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
    if not isinstance(scope, dict):
        scope = {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")
