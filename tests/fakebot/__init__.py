"""A fake Telegram Bot API (real aiohttp HTTP server) plus simulated users.

See :mod:`tests.fakebot.server` for the server and :mod:`tests.fakebot.users` for users.
"""

from .models import Call, CallbackAnswer, SentMessage, UploadedFile, WebhookDelivery
from .server import ApiError, FailureRule, FakeBotAPI, Hold
from .tghtml import EntityParseError, parse_html
from .users import FakeUser

__all__ = [
    "ApiError",
    "Call",
    "CallbackAnswer",
    "EntityParseError",
    "FailureRule",
    "FakeBotAPI",
    "FakeUser",
    "Hold",
    "SentMessage",
    "UploadedFile",
    "WebhookDelivery",
    "parse_html",
]
