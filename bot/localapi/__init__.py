"""A Telegram Bot API server that runs on this machine (aiohttp, real HTTP).

The real aiogram client talks to it as it talks to Telegram, and simulated users
(:class:`FakeUser`) play the people in the chats. The tests and benchmarks run the bot against it,
and ``daka demo`` runs the bot against it with a web chat in front of the users, so one
implementation serves both::

    async with LocalBotAPI() as server:
        api = TelegramAPIServer.from_base(server.url)
        bot = Bot(server.token, session=AiohttpSession(api=api))
        user = server.user(1001)
        user.send("/start")
        reply = await server.next_reply(1001)

Modules: :mod:`.state` (what the server remembers), :mod:`.updates` (getUpdates' long poll),
:mod:`.webhook` (delivery to a webhook), :mod:`.messages` (send methods), :mod:`.editing`
(edits, deletes and callback answers), :mod:`.files` (uploads and downloads), :mod:`.profile`
(getMe, commands), :mod:`.failures` (429/403/5xx/hold), :mod:`.inspection` (reading and
waiting), :mod:`.params` (request decoding), :mod:`.tghtml` (Telegram's HTML),
:mod:`.records` (the data kept), :mod:`.users` (simulated users) and :mod:`.server` (HTTP).
"""

from .failures import FailureRule, Hold
from .params import ApiError
from .records import Call, CallbackAnswer, SentMessage, UploadedFile, WebhookDelivery
from .server import FakeBotAPI, LocalBotAPI
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
    "LocalBotAPI",
    "SentMessage",
    "UploadedFile",
    "WebhookDelivery",
    "parse_html",
]
