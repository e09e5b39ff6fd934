"""The tests' fake WeCom: the product's own local WeCom server (:mod:`bot.localwecom`), under
the names the tests import (one implementation, as tests/fakebot is for Telegram)."""

from bot.localwecom import (
    ApiError,
    Attempt,
    Call,
    CallbackDriver,
    Card,
    Delivered,
    FakeApp,
    LocalWeCom,
    Push,
    ResponseCode,
    StoredMedia,
)

FakeWeCom = LocalWeCom

__all__ = [
    "ApiError",
    "Attempt",
    "Call",
    "CallbackDriver",
    "Card",
    "Delivered",
    "FakeApp",
    "FakeWeCom",
    "LocalWeCom",
    "Push",
    "ResponseCode",
    "StoredMedia",
]
