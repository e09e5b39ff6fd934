"""The fake Bot API server, driven by the real aiogram client over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Self

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from handlers.telegram.replies import ReplySession
from tests.fakebot import FakeBotAPI, UploadedFile, WebhookDelivery, parse_html

USER = 1001


def make_bot(server: FakeBotAPI, token: str | None = None) -> Bot:
    """aiogram's Bot with the product's session (aiogram's, closing at once over plain HTTP)."""
    session = ReplySession(api=TelegramAPIServer.from_base(server.url))
    return Bot(
        token or server.token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


@pytest.fixture
async def server() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake
        assert fake.internal_errors == []


@pytest.fixture
async def bot(server: FakeBotAPI) -> AsyncIterator[Bot]:
    client = make_bot(server)
    yield client
    await client.session.close()


def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="✅ Yes", callback_data="answer:yes"),
                InlineKeyboardButton(text="❌ No", callback_data="answer:no"),
            ],
            [InlineKeyboardButton(text="Help", url="https://example.org/help")],
        ]
    )


async def test_get_me(server: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 42
    assert me.is_bot
    assert me.username == "daka_test_bot"
    assert server.count("getMe") == 1
    assert server.count("getme") == 1


async def test_send_message_with_inline_keyboard(server: FakeBotAPI, bot: Bot) -> None:
    user = server.user(USER, first_name="Li")
    sent = await bot.send_message(USER, "Pick <b>one</b> &amp; go", reply_markup=keyboard())
    assert sent.message_id == 1
    assert sent.text == "Pick one & go"
    assert sent.chat.id == USER
    assert sent.chat.first_name == "Li"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.entities is not None and sent.entities[0].type == "bold"
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)

    (shown,) = server.messages(USER)
    assert shown.text == "Pick one & go"
    assert shown.html == "Pick <b>one</b> &amp; go"
    assert shown.buttons == [["✅ Yes", "❌ No"], ["Help"]]
    assert shown.callback_data("✅ Yes") == "answer:yes"
    assert shown.callback_data("No") == "answer:no"  # unique substring
    with pytest.raises(AssertionError):
        shown.callback_data("Maybe")
    reply = await server.next_reply(USER)
    assert reply == shown
    assert server.drain(USER) == []

    call = server.calls[-1]
    assert call.method == "sendMessage"
    assert call.chat_id == USER and call.status == 200
    assert call.params["chat_id"] == USER  # multipart strings decoded back
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "✅ Yes"

    user.press_button(reply, "Yes")
    updates = await bot.get_updates(timeout=0)
    query = updates[-1].callback_query
    assert isinstance(query, CallbackQuery)
    assert query.data == "answer:yes"
    assert query.from_user.id == USER
    assert isinstance(query.message, Message)
    assert query.message.message_id == sent.message_id
    assert query.message.reply_markup == sent.reply_markup


async def test_reply_keyboards(server: FakeBotAPI, bot: Bot) -> None:
    markup = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="📍 Send location", request_location=True)]],
        resize_keyboard=True,
    )
    await bot.send_message(USER, "Where are you?", reply_markup=markup)
    first = await server.next_reply(USER)
    assert first.has_request_location_button
    assert first.buttons == [["📍 Send location"]]
    assert "reply_markup" not in first.raw  # Telegram only echoes inline keyboards
    assert server.reply_keyboard(USER) is not None
    await bot.send_message(USER, "Thanks", reply_markup=ReplyKeyboardRemove())
    second = await server.next_reply(USER)
    assert second.removes_keyboard and not second.has_request_location_button
    assert server.reply_keyboard(USER) is None


async def test_long_poll_returns_pushed_update_and_honours_offset(
    server: FakeBotAPI, bot: Bot
) -> None:
    user = server.user(USER)
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await server.wait_for(lambda: server.polling)
    started = time.monotonic()
    update_id = user.send("/start hello")
    updates = await poll
    assert time.monotonic() - started < 1
    assert [u.update_id for u in updates] == [update_id]
    message = updates[0].message
    assert message is not None and message.text == "/start hello"
    assert message.entities is not None and message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")

    # not confirmed yet: delivered again
    again = await bot.get_updates(timeout=0)
    assert [u.update_id for u in again] == [update_id]
    assert server.pending_updates() == 1

    second = user.send("second")
    confirmed = await bot.get_updates(offset=update_id + 1, timeout=0)
    assert [u.update_id for u in confirmed] == [second]
    assert server.confirmed_offset == update_id + 1
    assert server.pending_updates() == 1
    assert await bot.get_updates(offset=second + 1, timeout=0) == []
    assert server.pending_updates() == 0
    assert user.last_update_id == second == server.last_update_id


async def test_long_poll_without_updates_times_out(server: FakeBotAPI, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == []
    assert 0.9 < time.monotonic() - started < 3


async def test_second_poll_terminates_first(server: FakeBotAPI, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await server.wait_for(lambda: server.polling)
    assert await bot.get_updates(timeout=0) == []
    with pytest.raises(TelegramConflictError):
        await first


async def test_fail_429_raises_retry_after(server: FakeBotAPI, bot: Bot) -> None:
    server.fail("sendMessage", 429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(USER, "x")
    assert info.value.retry_after == 3
    assert "retry after 3" in info.value.message
    assert server.count_429 == 1
    await bot.send_message(USER, "y")  # times=1: next one passes
    assert [m.text for m in server.messages(USER)] == ["y"]
    assert [c.status for c in server.calls_for(USER)] == [429, 200]


async def test_fail_only_for_one_chat(server: FakeBotAPI, bot: Bot) -> None:
    rule = server.fail("sendmessage", 403, chat_id=7, times=None)
    await bot.send_message(8, "fine")
    for _ in range(2):
        with pytest.raises(TelegramForbiddenError):
            await bot.send_message(7, "nope")
    assert rule.hits == 2
    server.clear_failures()
    await bot.send_message(7, "now fine")


async def test_a_hold_keeps_answers_back_after_the_first_calls(
    server: FakeBotAPI, bot: Bot
) -> None:
    hold = server.hold("sendMessage", after=1)
    await bot.send_message(USER, "answered")
    waiting = asyncio.create_task(bot.send_message(USER, "on the wire"))
    await server.wait_for(lambda: len(hold.held) == 1, timeout=5)
    assert [m.text for m in server.messages(USER)] == ["answered", "on the wire"]
    assert not waiting.done()
    hold.release()
    assert (await asyncio.wait_for(waiting, timeout=5)).text == "on the wire"
    await bot.send_message(USER, "after the release")
    assert [c.params["text"] for c in hold.held] == ["on the wire"]


async def test_block_and_unblock(server: FakeBotAPI, bot: Bot) -> None:
    server.block(USER)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(USER, "hello")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_chat_action(USER, "typing")
    server.unblock(USER)
    await bot.send_message(USER, "hello")
    assert server.count("sendMessage") == 2
    assert server.count("sendMessage", ok_only=True) == 1


async def test_server_errors(server: FakeBotAPI, bot: Bot) -> None:
    server.fail("sendMessage", 500)
    server.fail("sendMessage", 502)
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER, "a")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(USER, "b")
    await bot.send_message(USER, "c")


async def test_bad_requests(server: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "a <unknown> tag")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER, "<b>unclosed")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(USER, "x" * 4097)
    too_long = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="d" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(USER, "x", reply_markup=too_long)
    await bot.send_message(USER, "1 < 2 is fine when escaped: 1 &lt; 2", parse_mode=None)
    assert server.messages(USER)[0].text == "1 < 2 is fine when escaped: 1 &lt; 2"


async def test_edits_are_events_and_update_messages(server: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(USER, "Choose", reply_markup=keyboard())
    edited = await bot.edit_message_text(
        text="Chosen: <i>yes</i>", chat_id=USER, message_id=sent.message_id
    )
    assert isinstance(edited, Message)
    assert edited.text == "Chosen: yes"
    assert edited.reply_markup is None  # editMessageText without markup drops the keyboard
    first = await server.next_reply(USER)
    second = await server.next_reply(USER)
    assert (first.method, first.text, first.buttons[0][0]) == ("sendMessage", "Choose", "✅ Yes")
    assert (second.method, second.text, second.edited) == ("editMessageText", "Chosen: yes", True)
    (current,) = server.messages(USER)
    assert current.text == "Chosen: yes" and current.buttons == []

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="Chosen: <i>yes</i>", chat_id=USER, message_id=sent.message_id
        )
    await bot.edit_message_reply_markup(
        chat_id=USER, message_id=sent.message_id, reply_markup=keyboard()
    )
    third = await server.next_reply(USER)
    assert third.method == "editMessageReplyMarkup" and third.text == "Chosen: yes"
    assert third.callback_data("Yes") == "answer:yes"
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="?", chat_id=USER, message_id=999)

    assert await bot.delete_message(USER, sent.message_id)
    assert server.messages(USER) == []
    assert server.messages(USER, include_deleted=True)[0].deleted
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER, sent.message_id)


async def test_callback_answers(server: FakeBotAPI, bot: Bot) -> None:
    user = server.user(USER)
    sent = await bot.send_message(USER, "Choose", reply_markup=keyboard())
    user.press(sent.message_id, "answer:no")
    (update,) = await bot.get_updates(timeout=0)
    assert update.callback_query is not None
    await bot.answer_callback_query(update.callback_query.id, text="Saved", show_alert=True)
    answer = await server.next_callback_answer(timeout=1)
    assert (answer.text, answer.show_alert, answer.chat_id) == ("Saved", True, USER)
    assert server.callback_answers == [answer]
    assert await user.next_callback_answer(timeout=1) == answer
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("12345")


async def test_send_document_and_photo(server: FakeBotAPI, bot: Bot) -> None:
    content = b"col1,col2\n1,2\n"
    sent = await bot.send_document(
        USER, BufferedInputFile(content, filename="report.csv"), caption="<b>Report</b>"
    )
    assert sent.document is not None
    assert sent.document.file_name == "report.csv"
    assert sent.caption == "Report"
    shown = await server.next_reply(USER)
    assert shown.method == "sendDocument"
    assert shown.file_name == "report.csv"
    assert shown.text == "Report"
    uploaded = shown.params["document"]
    assert isinstance(uploaded, UploadedFile)
    assert (uploaded.filename, uploaded.data) == ("report.csv", content)
    assert shown.file_id is not None and server.file_bytes(shown.file_id) == content
    downloaded = await bot.download(sent.document.file_id)
    assert downloaded is not None and downloaded.read() == content

    photo = await bot.send_photo(USER, BufferedInputFile(b"\xff\xd8jpeg", filename="p.jpg"))
    assert photo.photo is not None and photo.photo[-1].width == 1280
    again = await bot.send_photo(USER, photo.photo[-1].file_id)  # re-send by file_id
    assert again.photo is not None and again.photo[-1].file_id == photo.photo[-1].file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(USER, "no-such-file-id")


async def test_user_media_and_get_file(server: FakeBotAPI, bot: Bot) -> None:
    user = server.user(USER, username="li")
    user.send_document("roster.xlsx", b"PK\x03\x04fake")
    user.send_location(31.2, 121.5, accuracy=12.5, forwarded=True)
    user.send_photo(caption="me", forwarded=True)
    user.send_sticker()
    user.send_contact()
    updates = await bot.get_updates(timeout=0)
    messages = [u.message for u in updates]
    assert all(m is not None for m in messages)
    doc_msg, loc_msg, photo_msg, sticker_msg, contact_msg = [m for m in messages if m]
    assert doc_msg.document is not None and doc_msg.document.file_name == "roster.xlsx"
    file = await bot.get_file(doc_msg.document.file_id)
    assert file.file_path is not None
    data = await bot.download_file(file.file_path)
    assert data is not None and data.read() == b"PK\x03\x04fake"
    assert loc_msg.location is not None
    assert (loc_msg.location.latitude, loc_msg.location.horizontal_accuracy) == (31.2, 12.5)
    assert loc_msg.forward_origin is not None and loc_msg.forward_origin.type == "user"
    assert photo_msg.photo is not None and photo_msg.caption == "me"
    assert photo_msg.forward_origin is not None
    assert sticker_msg.sticker is not None
    assert contact_msg.contact is not None and contact_msg.contact.user_id == USER
    ids = [m.message_id for m in messages if m]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert doc_msg.from_user is not None and doc_msg.from_user.username == "li"
    assert doc_msg.from_user.language_code == "zh-hans"


async def test_commands_menu_and_misc(server: FakeBotAPI, bot: Bot) -> None:
    commands = [
        BotCommand(command="start", description="Start"),
        BotCommand(command="checkin", description="打卡"),
    ]
    assert await bot.set_my_commands(commands)
    scope = BotCommandScopeChat(chat_id=USER)
    assert await bot.set_my_commands(commands[:1], scope=scope, language_code="zh")
    assert [c.command for c in await bot.get_my_commands()] == ["start", "checkin"]
    assert [c.command for c in await bot.get_my_commands(scope=scope, language_code="zh")] == [
        "start"
    ]
    assert server.commands()[1] == {"command": "checkin", "description": "打卡"}
    assert await bot.delete_my_commands(scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])
    assert await bot.set_chat_menu_button()
    assert await bot.send_chat_action(USER, "typing")
    location = await bot.send_location(USER, latitude=31.2, longitude=121.5)
    assert location.location is not None and location.location.longitude == 121.5
    assert (await server.next_reply(USER)).location == {"latitude": 31.2, "longitude": 121.5}
    assert await bot.delete_webhook(drop_pending_updates=True)
    info = await bot.get_webhook_info()
    assert info.url == "" and info.pending_update_count == 0


async def test_webhook_blocks_get_updates(server: FakeBotAPI, bot: Bot) -> None:
    server.user(USER).send("lost")
    assert await bot.set_webhook("https://example.org/hook")
    with pytest.raises(TelegramConflictError):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == []
    assert len(server.dropped_updates) == 1


async def test_rate_limits(server: FakeBotAPI, bot: Bot) -> None:
    server.enforce_limits(global_per_second=3, per_chat_per_second=1)
    await bot.send_message(1, "a")
    with pytest.raises(TelegramRetryAfter) as info:
        await bot.send_message(1, "b")
    assert info.value.retry_after == 1
    await bot.send_message(2, "c")
    await bot.send_message(3, "d")
    with pytest.raises(TelegramRetryAfter):
        await bot.send_message(4, "e")  # global limit
    assert server.count_429 == 2
    server.monotonic = lambda: time.monotonic() + 1.5  # a second and a half later
    await bot.send_message(1, "b again")
    server.disable_limits()
    for _ in range(5):
        await bot.send_message(1, "burst")


async def test_wrong_token_and_unknown_method(server: FakeBotAPI) -> None:
    wrong = make_bot(server, token="42:WRONG")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/bot{server.token}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found",
            }
        async with http.get(f"{server.url}/bot{server.token}/GETME") as resp:
            assert (await resp.json())["result"]["id"] == 42
        body = {"chat_id": USER, "text": "json", "reply_markup": json.dumps(keyboard_dict())}
        async with http.post(f"{server.url}/bot{server.token}/sendMessage", json=body) as resp:
            assert (await resp.json())["result"]["reply_markup"] == keyboard_dict()
        async with http.get(
            f"{server.url}/bot{server.token}/sendMessage",
            params={"chat_id": str(USER), "text": "12345"},
        ) as resp:
            assert (await resp.json())["result"]["text"] == "12345"
    assert server.unknown_methods["noSuchMethod"] == 1
    assert [m.text for m in server.messages(USER)] == ["json", "12345"]


def keyboard_dict() -> dict[str, object]:
    return {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}


async def test_missing_files(server: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")
    url = f"{server.url}/file/bot{server.token}/documents/x"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 404
    server.fail("getFile", 404)
    with pytest.raises(TelegramNotFound):
        await bot.get_file("nope")


async def test_next_reply_timeout_shows_transcript(server: FakeBotAPI, bot: Bot) -> None:
    user = server.user(USER)
    user.send("hello?")
    await bot.send_message(USER, "first")
    assert (await user.next_reply()).text == "first"
    with pytest.raises(AssertionError) as info:
        await user.next_reply(timeout=0.2)
    text = str(info.value)
    assert "hello?" in text and "'first'" in text
    await user.expect_no_reply(within=0.05)
    await bot.send_message(USER, "second")
    with pytest.raises(AssertionError, match="unexpected bot output"):
        await user.expect_no_reply(within=0.05)


async def test_wait_for_and_wait_for_call(server: FakeBotAPI, bot: Bot) -> None:
    async def send_later() -> None:
        for i in range(3):
            await bot.send_message(USER, f"m{i}")

    task = asyncio.create_task(send_later())
    await server.wait_for(lambda: server.count("sendMessage") >= 3, timeout=5)
    call = await server.wait_for_call("sendmessage", chat_id=USER)
    assert call.params["text"] == "m0"
    await task
    with pytest.raises(AssertionError, match="never"):
        await server.wait_for(lambda: False, timeout=0.05, message="never")


async def test_dispatcher_polling_echo(server: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        user = server.user(USER)
        user.send("hi")
        reply = await server.next_reply(USER, timeout=5)
        assert reply.text == "hi"
        assert (await user.ask("<b>escaped?</b>")).text == "escaped?"
        await server.wait_for(lambda: server.confirmed_offset > 1)
    finally:
        await dp.stop_polling()
        await polling


async def test_many_users_fast(server: FakeBotAPI, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo {message.text}")

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        users = [server.user(10_000 + i) for i in range(200)]
        started = time.monotonic()
        for u in users:
            u.send(f"from {u.id}")
        replies = await asyncio.gather(*(u.next_reply(timeout=20) for u in users))
        elapsed = time.monotonic() - started
        assert [r.text for r in replies] == [f"echo from {u.id}" for u in users]
        assert elapsed < 15
    finally:
        await dp.stop_polling()
        await polling


def test_parse_html() -> None:
    text, entities = parse_html('<a href="https://x.org/?a=1&amp;b=2">链接</a> 😀<b>x</b>')
    assert text == "链接 😀x"
    assert entities == [
        {"type": "text_link", "offset": 0, "length": 2, "url": "https://x.org/?a=1&b=2"},
        {"type": "bold", "offset": 5, "length": 1},  # the emoji takes two UTF-16 units
    ]


SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def refused_url() -> str:
    """A loopback URL nobody listens on (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/telegram"


class Receiver:
    """A webhook endpoint on a free port: records what arrives and answers as scripted."""

    def __init__(self) -> None:
        self.received: list[tuple[int, str | None]] = []  # (update_id, secret header)
        self.texts: list[str] = []
        self.statuses: list[int] = []  # answered to the next requests, then 200
        self.answer: dict[str, Any] = {}  # the JSON body of a 200
        self.gates: dict[str, asyncio.Event] = {}  # message text -> answered once set
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrived = asyncio.Event()

    def hold(self, text: str) -> asyncio.Event:
        """Keep the delivery of the message ``text`` unanswered until the event is set."""
        gate = self.gates[text] = asyncio.Event()
        return gate

    async def wait_for_texts(self, *texts: str, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until exactly these messages (in any order) have arrived."""
        async with asyncio.timeout(timeout):
            while sorted(self.texts) != sorted(texts):
                self._arrived.clear()
                await self._arrived.wait()

    async def handle(self, request: web.Request) -> web.Response:
        update = await request.json()
        self.received.append((update["update_id"], request.headers.get(SECRET_HEADER)))
        text = str(update.get("message", {}).get("text", ""))
        self.texts.append(text)
        self._arrived.set()
        gate = self.gates.get(text)
        if gate is not None:
            await gate.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response(self.answer if status == 200 else {}, status=status)

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_post("/telegram", self.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/telegram"
        return self

    async def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()


NewReceiver = Callable[[], Awaitable[Receiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[NewReceiver]:
    """Starts webhook receivers on demand; stops them after the test."""
    started: list[Receiver] = []

    async def start() -> Receiver:
        started.append(await Receiver().start())
        return started[-1]

    yield start
    for hook in started:
        await hook.stop()


async def test_webhook_posts_updates_with_the_secret(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    user = server.user(USER)
    early = user.send("before the webhook")
    assert await bot.set_webhook(
        hook.url, secret_token="s3cret", max_connections=5, allowed_updates=["message"]
    )
    later = user.send("hello")
    await server.wait_webhook_idle()
    assert hook.received == [(early, "s3cret"), (later, "s3cret")]
    assert hook.texts == ["before the webhook", "hello"]
    assert server.webhook_deliveries == [
        WebhookDelivery(early, hook.url, 200),
        WebhookDelivery(later, hook.url, 200),
    ]
    info = await bot.get_webhook_info()
    assert (info.url, info.has_custom_certificate, info.pending_update_count) == (
        hook.url,
        False,
        0,
    )
    assert (info.max_connections, info.allowed_updates) == (5, ["message"])
    assert info.last_error_date is None and info.last_error_message is None
    assert (server.webhook_secret, server.webhook_max_connections) == ("s3cret", 5)
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates(timeout=0)
    with pytest.raises(TelegramBadRequest, match="secret token"):
        await bot.set_webhook(hook.url, secret_token="not allowed!")


async def test_webhook_targets_take_turns(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    a, b = await receiver(), await receiver()
    server.webhook_targets = [a.url, b.url]
    with pytest.raises(TypeError):
        server.webhook_targets = a.url
    await bot.set_webhook("https://daka.example.org/telegram", secret_token="s3cret")
    sent = [server.user(USER + i).send(f"user {i}") for i in range(4)]
    await server.wait_webhook_idle()
    target_of = {d.update_id: d.target for d in server.webhook_deliveries}
    assert [target_of[update_id] for update_id in sent] == [a.url, b.url, a.url, b.url]
    assert sorted(a.received) == [(sent[0], "s3cret"), (sent[2], "s3cret")]
    assert sorted(b.received) == [(sent[1], "s3cret"), (sent[3], "s3cret")]


async def test_webhook_never_leaves_loopback(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    await bot.set_webhook("https://daka.example.org/telegram")
    update_id = server.user(USER).send("hi")
    await server.wait_for(lambda: len(server.webhook_deliveries) == 1)
    assert server.webhook_deliveries[0].status is None
    assert "loopback" in (server.webhook_last_error_message or "")
    hook = await receiver()
    server.webhook_targets = [hook.url]  # retries at once, whatever the backoff
    await server.wait_webhook_idle(timeout=1)
    assert hook.received == [(update_id, None)]


async def test_webhook_one_chat_at_a_time_in_order(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    await bot.set_webhook(hook.url)
    li, wang = server.user(USER), server.user(USER + 1)
    gate = hook.hold("one")
    li.send("one")
    li.send("two")
    other = wang.send("other chat")
    await hook.wait_for_texts("one", "other chat")
    await server.wait_for(lambda: [d.update_id for d in server.webhook_deliveries] == [other])
    assert server.webhook_in_flight == 1  # "one" is held; "two" waits for its answer
    assert server.pending_updates() == 2
    gate.set()
    await server.wait_webhook_idle()
    assert hook.texts[-1] == "two"
    assert [d.status for d in server.webhook_deliveries] == [200, 200, 200]


async def test_webhook_max_connections_bounds_the_chats_in_flight(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    await bot.set_webhook(hook.url, max_connections=1)
    gate = hook.hold("first")
    server.user(USER).send("first")
    server.user(USER + 1).send("second")
    await hook.wait_for_texts("first")
    assert (await bot.get_webhook_info()).pending_update_count == 2
    assert hook.texts == ["first"] and server.webhook_in_flight == 1
    gate.set()
    await server.wait_webhook_idle()
    assert hook.texts == ["first", "second"]


async def test_webhook_retries_until_answered_2xx(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    server.webhook_retry_delay = 0.05
    hook = await receiver()
    hook.statuses = [500, 401]
    await bot.set_webhook(hook.url)
    update_id = server.user(USER).send("again")
    await server.wait_webhook_idle()
    assert [d.status for d in server.webhook_deliveries] == [500, 401, 200]
    assert hook.received == [(update_id, None)] * 3
    expected = "Wrong response from the webhook: 401 Unauthorized"
    assert server.webhook_last_error_message == expected
    info = await bot.get_webhook_info()
    assert info.last_error_message == expected and info.last_error_date is not None
    assert info.pending_update_count == 0


async def test_webhook_keeps_updates_while_the_connection_is_refused(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    server.webhook_retry_delay = 0.05
    await bot.set_webhook(refused_url())
    update_id = server.user(USER).send("anyone there?")
    await server.wait_for(lambda: len(server.webhook_deliveries) >= 2)  # retried
    assert {d.status for d in server.webhook_deliveries} == {None}
    info = await bot.get_webhook_info()
    assert (info.pending_update_count, info.last_error_message) == (1, "Connection refused")
    hook = await receiver()
    server.webhook_targets = [hook.url]  # the replica came back behind the balancer
    await server.wait_webhook_idle()
    assert hook.received == [(update_id, None)]


async def test_webhook_answer_with_a_method_is_executed(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    hook.answer = {
        "method": "sendMessage",
        "chat_id": USER,
        "text": "from <b>JSON</b>",
        "parse_mode": "HTML",
    }
    await bot.set_webhook(hook.url)
    user = server.user(USER)
    user.send("hi")
    await server.wait_webhook_idle()
    assert (await user.next_reply()).text == "from JSON"
    hook.answer = {"method": "sendMessage", "chat_id": USER}  # Telegram ignores the failure
    user.send("again")
    await server.wait_webhook_idle()
    assert server.calls[-1].method == "sendMessage" and server.calls[-1].status == 400
    assert [d.status for d in server.webhook_deliveries] == [200, 200]


async def test_aiogram_webhook_handler_answers_in_the_response(
    server: FakeBotAPI, bot: Bot
) -> None:
    dp = Dispatcher()

    @dp.message()
    async def pong(message: Message) -> SendMessage:
        return message.answer(f"pong <i>{message.text}</i>")

    app = web.Application()
    replica_bot = make_bot(server)  # the handler closes its session on shutdown
    SimpleRequestHandler(
        dp, replica_bot, handle_in_background=False, secret_token="s3cret"
    ).register(app, path="/telegram")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/telegram"
        await bot.set_webhook(url, secret_token="wrong")
        user = server.user(USER)
        user.send("hi")
        await server.wait_for(lambda: len(server.webhook_deliveries) == 1)
        expected = "Wrong response from the webhook: 401 Unauthorized"
        assert server.webhook_last_error_message == expected
        await bot.set_webhook(url, secret_token="s3cret")  # retries at once
        reply = await user.next_reply()
        assert (reply.text, reply.html) == ("pong hi", "pong <i>hi</i>")
        await server.wait_webhook_idle()
        assert [d.status for d in server.webhook_deliveries] == [401, 200]
        assert server.calls_of("sendMessage")[-1].chat_id == USER
    finally:
        await runner.cleanup()


async def test_delete_webhook_hands_pending_updates_back_to_get_updates(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    user = server.user(USER)
    await bot.set_webhook(hook.url)
    delivered = user.send("delivered")
    await server.wait_webhook_idle()
    assert await bot.delete_webhook()
    polled = user.send("polled")
    assert [u.update_id for u in await bot.get_updates(offset=polled, timeout=0)] == [polled]
    assert hook.received == [(delivered, None)]
    assert len(server.webhook_deliveries) == 1

    await bot.set_webhook(refused_url())
    waiting = user.send("waiting")
    await server.wait_for(lambda: len(server.webhook_deliveries) == 2)
    assert await bot.delete_webhook()
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.last_error_message) == ("", 2, None)
    updates = await bot.get_updates(offset=polled + 1, timeout=0)
    assert [u.update_id for u in updates] == [waiting]

    await bot.set_webhook(refused_url())
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == []
    assert server.dropped_updates[-1]["update_id"] == waiting


async def test_stopped_server_delivers_again_after_restart(
    server: FakeBotAPI, bot: Bot, receiver: NewReceiver
) -> None:
    hook = await receiver()
    await bot.set_webhook(hook.url)
    gate = hook.hold("one")
    update_id = server.user(USER).send("one")
    await hook.wait_for_texts("one")
    await server.stop()  # abandons the delivery in flight; the update stays pending
    assert server.pending_updates() == 1 and server.webhook_in_flight == 0
    gate.set()
    await server.start()
    await server.wait_webhook_idle()
    assert hook.received == [(update_id, None)] * 2
    assert server.webhook_deliveries == [WebhookDelivery(update_id, hook.url, 200)]


async def test_wait_webhook_idle_says_why(server: FakeBotAPI, bot: Bot) -> None:
    await bot.set_webhook(refused_url())
    server.user(USER).send("lost?")
    with pytest.raises(AssertionError, match=r"1 pending.*Connection refused"):
        await server.wait_webhook_idle(timeout=0.2)


CHILD_POLLER = """
import asyncio, sys
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer

async def main() -> None:
    api = TelegramAPIServer.from_base(sys.argv[1])
    bot = Bot(sys.argv[2], session=AiohttpSession(api=api))
    while True:
        updates = await bot.get_updates(timeout=30)
        print(len(updates), flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_killed_subprocess_poller_is_released(server: FakeBotAPI, bot: Bot) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD_POLLER,
        server.url,
        server.token,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await server.wait_for(lambda: server.polling, timeout=30)
    finally:
        proc.kill()
        await proc.wait()
    # the dropped connection cancels the parked long poll at once
    await server.wait_for(lambda: not server.polling, timeout=5)
    update_id = server.user(USER).send("after restart")
    assert [u.update_id for u in await bot.get_updates(timeout=5)] == [update_id]
