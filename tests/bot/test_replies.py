"""Replies recorded while an update is handled and sent after the commit, straight from their
journal records, against the fake Bot API: what Telegram receives, and what becomes of a reply
that Telegram refuses or delays."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    Response,
    SendDocument,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from pydantic import SecretStr

from bot.app import create_bot
from bot.config import Settings
from handlers.telegram.replies import ReplySender, ReplySession, current_replies, dump, load
from handlers.telegram.uploads import Upload
from storage.makers import MAKERS
from tests.fakebot import FakeBotAPI

CHAT = 5001
OTHER_CHAT = 5002


@pytest.fixture
async def bot(server: FakeBotAPI) -> AsyncIterator[Bot]:
    settings = Settings(
        bot_token=SecretStr(server.token),
        telegram_api_url=server.url,
        database_url="sqlite+aiosqlite:///:memory:",
        bot_username="daka_test_bot",
        _env_file=None,
    )
    made = create_bot(settings)
    try:
        yield made
    finally:
        await made.session.close()


@pytest.fixture
def sent() -> list[int]:
    """The updates whose replies the sender reported done, in that order."""
    return []


@pytest.fixture
def sender(bot: Bot, sent: list[int]) -> ReplySender:
    return ReplySender(bot, sent.append)


def texts(server: FakeBotAPI, chat_id: int) -> list[str]:
    return [m.text for m in server.messages(chat_id)]


def statuses(server: FakeBotAPI, method: str) -> list[int]:
    return [call.status for call in server.calls_of(method)]


async def test_the_bot_built_for_daka_takes_the_lean_path(sender: ReplySender) -> None:
    assert sender.lean


async def test_the_parse_mode_default_is_filled_in_unless_the_handler_set_none(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    sender.send(
        1,
        CHAT,
        [
            SendMessage(chat_id=CHAT, text="<b>早上好</b>"),
            SendMessage(chat_id=CHAT, text="<b>literal</b>", parse_mode=None),
        ],
    )
    await sender.drain()

    first, second = server.calls_of("sendMessage")
    assert first.params["parse_mode"] == "HTML"
    assert "parse_mode" not in second.params
    assert texts(server, CHAT) == ["早上好", "<b>literal</b>"]
    assert sent == [1]


async def test_journal_records_are_sent_as_stored_after_a_restart(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="是", callback_data="yes")]]
    )
    stored = json.dumps(
        dump(
            [
                SendMessage(chat_id=CHAT, text="<i>体温</i>", reply_markup=keyboard),
                SendMessage(chat_id=CHAT, text="<i>as is</i>", parse_mode=None),
            ]
        )
    )

    sender.send_records(7, json.loads(stored))
    await sender.drain()

    question, plain = server.messages(CHAT)
    assert question.text == "体温"
    assert question.params["parse_mode"] == "HTML"
    assert question.callback_data("是") == "yes"
    assert plain.text == "<i>as is</i>"
    assert sent == [7]


def test_records_load_back_into_the_same_calls() -> None:
    calls: list[TelegramMethod[Any]] = [
        SendMessage(chat_id=CHAT, text="a"),
        SendMessage(chat_id=CHAT, text="b", parse_mode=None),
        EditMessageText(chat_id=CHAT, message_id=3, text="c"),
        AnswerCallbackQuery(callback_query_id="q", text="ok"),
    ]

    records = json.loads(json.dumps(dump(calls)))

    assert "parse_mode" not in records[0]  # the bot's default, decided when sent
    assert records[1]["parse_mode"] is None  # explicitly none, also after a restart
    assert dump(load(records)) == records


async def test_a_429_waits_retry_after_then_sends_the_same_reply(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    server.fail("sendMessage", 429, retry_after=1)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="体温已记录")])
    await sender.drain()

    limited, delivered = server.calls_of("sendMessage")
    assert (limited.status, delivered.status) == (429, 200)
    assert delivered.at - limited.at >= 0.95
    assert texts(server, CHAT) == ["体温已记录"]
    assert sent == [1]


async def test_a_member_who_blocked_the_bot_costs_one_request(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    server.block(CHAT)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="hello")])
    sender.send(2, OTHER_CHAT, [SendMessage(chat_id=OTHER_CHAT, text="hello")])
    await sender.drain()

    assert [c.status for c in server.calls_for(CHAT)] == [403]
    assert texts(server, OTHER_CHAT) == ["hello"]
    assert sorted(sent) == [1, 2]


async def test_a_button_too_old_to_answer_is_ignored_and_the_rest_is_sent(
    server: FakeBotAPI,
    sender: ReplySender,
    sent: list[int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.telegram.replies")

    sender.send(
        1,
        CHAT,
        [
            AnswerCallbackQuery(callback_query_id="long-gone"),
            SendMessage(chat_id=CHAT, text="next question"),
        ],
    )
    await sender.drain()

    assert statuses(server, "answerCallbackQuery") == [400]
    assert texts(server, CHAT) == ["next question"]
    assert sent == [1]
    ignored = [r for r in caplog.records if "query is too old" in r.getMessage()]
    assert [r.levelno for r in ignored] == [logging.INFO]


async def test_an_edit_that_changes_nothing_is_ignored(
    server: FakeBotAPI, sender: ReplySender, sent: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="same")])
    await sender.drain()
    message_id = server.last_message(CHAT).message_id
    caplog.set_level(logging.INFO, logger="handlers.telegram.replies")

    sender.send(2, CHAT, [EditMessageText(chat_id=CHAT, message_id=message_id, text="same")])
    await sender.drain()

    assert statuses(server, "editMessageText") == [400]
    assert sent == [1, 2]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_any_other_refusal_is_logged_and_the_rest_is_sent(
    server: FakeBotAPI, sender: ReplySender, sent: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    server.fail("sendMessage", 400, description="Bad Request: message text is empty")

    sender.send(
        1,
        CHAT,
        [SendMessage(chat_id=CHAT, text="refused"), SendMessage(chat_id=CHAT, text="sent")],
    )
    await sender.drain()

    assert statuses(server, "sendMessage") == [400, 200]
    assert texts(server, CHAT) == ["sent"]
    assert sent == [1]
    refused = [r for r in caplog.records if "message text is empty" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.WARNING]


async def test_a_server_error_is_retried_with_backoff(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    server.fail("sendMessage", 502)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="eventually")])
    await sender.drain()

    assert statuses(server, "sendMessage") == [502, 200]
    assert texts(server, CHAT) == ["eventually"]
    assert sent == [1]


async def test_server_errors_give_up_after_max_attempts(
    server: FakeBotAPI, bot: Bot, sent: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    sender = ReplySender(bot, sent.append, max_attempts=2)
    server.fail("sendMessage", 500, times=None)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="never")])
    await sender.drain()

    assert statuses(server, "sendMessage") == [500, 500]
    assert sent == [1]
    assert any("dropped after 2 attempts" in r.getMessage() for r in caplog.records)


async def test_replies_keep_their_order_within_a_chat_while_other_chats_go_on(
    server: FakeBotAPI, sender: ReplySender, sent: list[int]
) -> None:
    server.fail("sendMessage", 429, chat_id=CHAT, retry_after=1)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text=t) for t in ("a1", "a2")])
    sender.send(2, OTHER_CHAT, [SendMessage(chat_id=OTHER_CHAT, text="b1")])
    sender.send(3, CHAT, [SendMessage(chat_id=CHAT, text="a3")])
    await sender.drain()

    assert texts(server, CHAT) == ["a1", "a2", "a3"]
    assert texts(server, OTHER_CHAT) == ["b1"]
    assert sent == [2, 1, 3]
    other = server.calls_for(OTHER_CHAT)[0]
    first_in_chat = next(c for c in server.calls_for(CHAT) if c.status == 200)
    assert other.at < first_in_chat.at  # not held up by the other chat's wait


class _Counting(BaseRequestMiddleware):
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        self.seen.append(method.__api_method__)
        return await make_request(bot, method)


async def test_a_bot_with_request_middlewares_of_its_own_keeps_aiogram_s_path(
    server: FakeBotAPI, bot: Bot, sent: list[int]
) -> None:
    counting = _Counting()
    bot.session.middleware(counting)
    sender = ReplySender(bot, sent.append)

    sender.send(1, CHAT, [SendMessage(chat_id=CHAT, text="<b>x</b>")])
    sender.send_records(2, dump([SendMessage(chat_id=CHAT, text="<b>y</b>")]))
    await sender.drain()

    assert not sender.lean
    assert counting.seen == ["sendMessage", "sendMessage"]
    assert texts(server, CHAT) == ["x", "y"]
    assert sent == [1, 2]


async def test_calls_made_while_handling_are_recorded_and_answered_with_stand_ins(
    server: FakeBotAPI, bot: Bot
) -> None:
    buffer: list[TelegramMethod[Any]] = []
    token = current_replies.set(buffer)
    try:
        message = await bot.send_message(CHAT, "later")
        answered = await bot.answer_callback_query("q")
    finally:
        current_replies.reset(token)

    assert isinstance(message, Message)
    assert answered is True
    assert [type(m) for m in buffer] == [SendMessage, AnswerCallbackQuery]
    assert server.calls_of("sendMessage") == []


async def test_files_are_recorded_with_the_other_replies_and_sent_from_the_journal(
    server: FakeBotAPI, bot: Bot, sent: list[int], tmp_path: Path
) -> None:
    on_disk = tmp_path / "chart.png"
    on_disk.write_bytes(b"\x89PNG chart")
    buffer: list[TelegramMethod[Any]] = []
    token = current_replies.set(buffer)
    try:
        await bot.send_document(CHAT, BufferedInputFile(b'{"a": 1}', filename="data.json"))
        await bot.send_photo(CHAT, FSInputFile(on_disk), caption="<b>chart</b>")
    finally:
        current_replies.reset(token)
    on_disk.unlink()  # the record holds the file itself, not its path
    stored = json.dumps(dump(buffer))

    assert server.calls_of("sendDocument") == server.calls_of("sendPhoto") == []
    sender = ReplySender(bot, sent.append)
    sender.send_records(3, json.loads(stored))
    await sender.drain()

    document, photo = server.messages(CHAT)
    assert document.file_name == "data.json"
    assert server.file_bytes(document.file_id or "") == b'{"a": 1}'
    assert server.file_bytes(photo.file_id or "") == b"\x89PNG chart"
    assert photo.text == "chart" and photo.params["parse_mode"] == "HTML"
    assert sent == [3]


def all_gone(paths: list[str]) -> bool:
    return not any(os.path.exists(p) for p in paths)


def use_test_maker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register `make_greeting` as a maker; the maker process runs with -P (no working directory
    on its path), so it is told where this test module's package lives."""
    monkeypatch.setitem(MAKERS, "greeting", f"{__name__}:make_greeting")
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )


def make_greeting(url: str, args: Mapping[str, Any], path: str) -> int:
    if args["to"] == "nobody":
        raise ValueError("nobody to greet")
    Path(path).write_text(f"hello {args['to']} from {url}\n" * 3)
    return 3


async def test_an_upload_is_made_after_the_commit_then_sent_and_removed(
    server: FakeBotAPI, bot: Bot, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_maker(monkeypatch)
    made: list[str] = []
    unlink = os.unlink

    def remember(path: str) -> None:
        made.append(path)
        unlink(path)

    monkeypatch.setattr(os, "unlink", remember)
    records = dump(
        [
            SendDocument(
                chat_id=CHAT,
                document=Upload("greeting", {"to": "you"}, "hello.txt", failed="no greeting"),
                caption="{rows} lines",
            ),
            SendDocument(
                chat_id=CHAT,
                document=Upload("greeting", {"to": "nobody"}, "hello.txt", failed="no greeting"),
                caption="{rows} lines",
            ),
        ]
    )
    sender = ReplySender(bot, sent.append, database_url="sqlite:///x.db")
    sender.send_records(4, json.loads(json.dumps(records)))
    await sender.drain()

    document, failure = server.messages(CHAT)
    assert document.file_name == "hello.txt" and document.text == "3 lines"
    assert server.file_bytes(document.file_id or "") == b"hello you from sqlite:///x.db\n" * 3
    assert failure.text == "no greeting"
    assert len(made) == 2 and all_gone(made)
    assert sent == [4]


async def test_a_made_file_telegram_refuses_is_followed_by_its_failure_text(
    server: FakeBotAPI, bot: Bot, sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_test_maker(monkeypatch)
    server.fail("sendDocument", 400, description="Bad Request: file is too big")
    upload = Upload("greeting", {"to": "all"}, "hello.txt", failed="too big to send")
    sender = ReplySender(bot, sent.append, database_url="sqlite:///x.db")

    sender.send_records(5, dump([SendDocument(chat_id=CHAT, document=upload)]))
    await sender.drain()

    assert statuses(server, "sendDocument") == [400]
    assert texts(server, CHAT) == ["too big to send"]
    assert sent == [5]


@pytest.mark.parametrize(
    ("api_url", "graces"), [("http://127.0.0.1:1", []), ("https://api.telegram.org", [0.25])]
)
async def test_a_plain_http_bot_api_session_closes_without_the_tls_grace(
    monkeypatch: pytest.MonkeyPatch, api_url: str, graces: list[float]
) -> None:
    """aiogram waits 250 ms after closing its session, for TLS connections to shut down; over
    plain HTTP (`daka demo`'s local Bot API, the tests' fake) there are none to wait for. Every
    bot a test started paid that wait when it stopped."""
    import aiogram.client.session.aiohttp as aiogram_aiohttp

    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    settings = Settings(
        bot_token=SecretStr("42:TEST"),
        telegram_api_url=api_url,
        database_url="sqlite+aiosqlite:///:memory:",
        _env_file=None,
    )
    session = create_bot(settings).session
    assert isinstance(session, ReplySession)
    client = await session.create_session()
    with monkeypatch.context() as patch:
        patch.setattr(aiogram_aiohttp.asyncio, "sleep", sleep)
        await session.close()
    assert client.closed
    assert waited == graces
