"""The tests' fake Telegram Bot API: the product's own local Bot API (:mod:`bot.localapi`),
under the names the tests have always imported (one implementation, not two)."""

from bot.localapi import (
    ApiError,
    Call,
    CallbackAnswer,
    EntityParseError,
    FailureRule,
    FakeBotAPI,
    FakeUser,
    Hold,
    SentMessage,
    UploadedFile,
    WebhookDelivery,
    parse_html,
)

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
