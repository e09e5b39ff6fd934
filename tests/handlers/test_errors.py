"""The one Bot API error policy: every failure of a call to Telegram means one neutral outcome,
whether aiogram raised it or the answer was read as JSON."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import ClientDecodeError, TelegramEntityTooLarge, TelegramNetworkError
from aiogram.methods import SendMessage

from domain.delivery import Failure, Refused, RetryAfter, Transient, Unreachable
from handlers.telegram.errors import failure_of, failure_of_answer, harmless

SEND = SendMessage(chat_id=12, text="x")


def answer(status: int, description: str, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return body


CASES: list[tuple[int, dict[str, Any], Failure]] = [
    (
        429,
        answer(429, "Too Many Requests: retry after 3", retry_after=3),
        RetryAfter(3.0, "Too Many Requests: retry after 3"),
    ),
    (
        403,
        answer(403, "Forbidden: bot was blocked by the user"),
        Unreachable("Forbidden: bot was blocked by the user"),
    ),
    (
        403,
        answer(403, "Forbidden: user is deactivated"),
        Unreachable("Forbidden: user is deactivated"),
    ),
    (400, answer(400, "Bad Request: chat not found"), Unreachable("Bad Request: chat not found")),
    (
        400,
        answer(400, "Bad Request: message text is empty"),
        Refused("Bad Request: message text is empty"),
    ),
    (401, answer(401, "Unauthorized"), Refused("Unauthorized")),
    (404, answer(404, "Not Found"), Refused("Not Found")),
    (
        409,
        answer(409, "Conflict: terminated by other getUpdates request"),
        Transient("Conflict: terminated by other getUpdates request"),
    ),
    (413, answer(413, "Request Entity Too Large"), Refused("Request Entity Too Large")),
    (500, answer(500, "Internal Server Error"), Transient("Internal Server Error")),
    (502, answer(502, "Bad Gateway"), Transient("Bad Gateway")),
]


def kind(failure: Failure | None) -> tuple[type[Failure] | None, float | None]:
    """The outcome without its wording (aiogram rewords a 429's description)."""
    if failure is None:
        return None, None
    return type(failure), failure.seconds if isinstance(failure, RetryAfter) else None


@pytest.mark.parametrize(("status", "body", "expected"), CASES)
def test_an_answer_means_the_same_read_as_json_or_raised_by_aiogram(
    status: int, body: dict[str, Any], expected: Failure
) -> None:
    assert failure_of_answer(status, body) == expected
    bot = Bot("42:TEST")
    with pytest.raises(Exception) as raised:  # what aiogram makes of the very same answer
        AiohttpSession().check_response(bot, SEND, status, json.dumps(body))
    assert kind(failure_of(raised.value)) == kind(expected)


def test_a_taken_call_is_no_failure() -> None:
    assert failure_of_answer(200, {"ok": True, "result": True}) is None


@pytest.mark.parametrize(
    "exc",
    [
        TelegramNetworkError(SEND, "HTTP Client says - ClientConnectorError"),
        ClientDecodeError("Failed to decode object", ValueError("no"), "<html>"),
        aiohttp.ClientConnectionError("reset"),
        TimeoutError(),
    ],
)
def test_the_way_to_telegram_failing_is_transient(exc: Exception) -> None:
    assert isinstance(failure_of(exc), Transient)


def test_an_answer_that_is_not_telegrams_is_transient() -> None:
    assert failure_of_answer(200, {}) == Transient("HTTP 200")  # a proxy's page
    assert failure_of_answer(502, {}) == Transient("HTTP 502")


def test_a_file_too_large_is_refused_not_retried() -> None:
    too_large = TelegramEntityTooLarge(SEND, "Request Entity Too Large")
    assert failure_of(too_large) == Refused("Request Entity Too Large")


def test_only_cosmetic_calls_refused_for_nothing_to_do_are_harmless() -> None:
    assert harmless("answerCallbackQuery", "Bad Request: query is too old and response timeout")
    assert harmless("editMessageText", "Bad Request: message is not modified: same content")
    assert not harmless("sendMessage", "Bad Request: message is not modified")
    assert not harmless("editMessageText", "Bad Request: message text is empty")
