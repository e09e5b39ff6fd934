"""Option keys: what a button under a message means, in words the core owns, whatever the
channel. A letter or a reply offers options (a label and a key, or a label and a link); each
channel renders them its own way (Telegram: an inline keyboard whose callback data is the key)
and hands a press back to the core as the key.

The keys are short, because Telegram carries them as callback data (64 bytes at most), and
stable: buttons already in people's chats, and letters already in the outbox, carry them."""

from __future__ import annotations

from typing import Final

# Start today's check-in. The very string Telegram buttons have carried since the first release
# (aiogram's `StartCheckInCb().pack()`), so every old button still works.
CHECKIN_NOW: Final = "go"

Option = dict[str, str]
"""One option: {"label": ..., "key": ...} (pressed: the key goes to the core) or
{"label": ..., "url": ...} (a link the channel opens); stored as JSON in the outbox."""

Options = list[list[Option]]
"""Options in rows, as they are shown."""


def option(label: str, key: str) -> Option:
    return {"label": label, "key": key}


def link(label: str, url: str) -> Option:
    return {"label": label, "url": url}
