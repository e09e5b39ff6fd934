"""Updates from outside a private chat, as Telegram sends them: groups, supergroups, channels,
anonymous group admins, bots, edits, the bot being added to a group."""

from __future__ import annotations

import itertools
from typing import Any

from aiogram.types import Update

from bot.localapi.tghtml import utf16_len
from handlers.telegram.middlewares import GROUP_ANONYMOUS_BOT
from tests.fakebot import FakeBotAPI, FakeUser

JSON = dict[str, Any]

GROUP: JSON = {"id": -4012345678, "type": "group", "title": "一班家长群"}
SUPERGROUP: JSON = {"id": -1001234567890, "type": "supergroup", "title": "工程学院"}
CHANNEL: JSON = {"id": -1009876543210, "type": "channel", "title": "通知"}
ANONYMOUS_ADMIN: JSON = {
    "id": GROUP_ANONYMOUS_BOT,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
OTHER_BOT: JSON = {"id": 5_555_000_001, "is_bot": True, "first_name": "Spam", "username": "x_bot"}

_message_ids = itertools.count(9_000)
_callback_ids = itertools.count(7_100_000_000_000_000_001)


def message_in(chat: JSON, sender: FakeUser | JSON | None, text: str, **extra: Any) -> JSON:
    """A `message` body in `chat`: from a person (a FakeUser), a bot, or an anonymous admin
    (`sender` ANONYMOUS_ADMIN: `sender_chat` is the group itself)."""
    message: JSON = {"message_id": next(_message_ids), "date": 1_795_000_000, "chat": chat}
    if isinstance(sender, FakeUser):
        message["from"] = sender.user_dict
    elif sender is not None:
        message["from"] = sender
    if sender is ANONYMOUS_ADMIN or chat["type"] == "channel":
        message["sender_chat"] = chat
    if text:
        message["text"] = text
    if text.startswith("/") and len(text) > 1:
        word = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]
    message.update(extra)
    return message


def press_in(chat: JSON, user: FakeUser, data: str) -> JSON:
    """A `callback_query` body: `user` pressed a button under a bot message in `chat`."""
    under = {
        "message_id": next(_message_ids),
        "date": 1_795_000_000,
        "chat": chat,
        "from": {"id": 42, "is_bot": True, "first_name": "Daka Test"},
        "text": "…",
    }
    return {
        "id": str(next(_callback_ids)),
        "from": user.user_dict,
        "message": under,
        "chat_instance": "-77",
        "data": data,
    }


def bot_added_to(chat: JSON, by: FakeUser) -> JSON:
    """A `my_chat_member` body: `by` made the bot a member of `chat`."""
    me = {"id": 42, "is_bot": True, "first_name": "Daka Test", "username": "daka_test_bot"}
    return {
        "chat": chat,
        "from": by.user_dict,
        "date": 1_795_000_000,
        "old_chat_member": {"status": "left", "user": me},
        "new_chat_member": {"status": "member", "user": me},
    }


def update(server: FakeBotAPI, kind: str, body: JSON) -> Update:
    """An update of any kind, numbered after the server's, for `JournaledPolling.handle` (long
    polling asks Telegram for messages and button presses only)."""
    update_id = server.push_update({"poll": {}})  # the next id; a kind that is never delivered
    return Update.model_validate({"update_id": update_id, kind: body})
