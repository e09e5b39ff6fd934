"""A WeCom server that runs on this machine (aiohttp, real HTTP): the API Daka's client calls
(gettoken, message/send, update_template_card, media, menu) and a driver that plays WeCom's
side of the app's callback. The tests use it, and ``daka demo`` can, as it uses
:mod:`bot.localapi` for Telegram::

    async with LocalWeCom(clock=clock) as wecom:
        wecom.add_app(1000002, "secret")
        wecom.add_members("zhangsan")
        api = WeComAPI(session, App(wecom.corp_id, 1000002, "secret"), base_url=wecom.url)
        await api.send_text(["zhangsan"], "你好")
        assert wecom.inbox("zhangsan")[0].text == "你好"

Modules: :mod:`.server` (the API and its state), :mod:`.schema` (what a request must hold),
:mod:`.records` (what is kept), :mod:`.events` (callback payloads) and :mod:`.driver` (the
callback's caller)."""

from .driver import Attempt, CallbackDriver, Push
from .records import ApiError, Call, Card, Delivered, FakeApp, ResponseCode, StoredMedia
from .server import LocalWeCom

__all__ = [
    "ApiError",
    "Attempt",
    "Call",
    "CallbackDriver",
    "Card",
    "Delivered",
    "FakeApp",
    "LocalWeCom",
    "Push",
    "ResponseCode",
    "StoredMedia",
]
