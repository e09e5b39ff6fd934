"""Buttons that the core offers as option keys and the Telegram routers read as callback data
must be one and the same string, or a reminder's button would start nothing."""

from __future__ import annotations

from domain.keys import CHECKIN_NOW
from handlers.telegram.keyboards import StartCheckInCb


def test_the_start_check_in_button_carries_the_core_s_key() -> None:
    assert CHECKIN_NOW == "go"  # what buttons already in chats and queued letters carry
    assert StartCheckInCb().pack() == CHECKIN_NOW
    assert StartCheckInCb.unpack(CHECKIN_NOW) == StartCheckInCb()
