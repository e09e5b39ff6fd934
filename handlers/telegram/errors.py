"""The one Bot API error policy: what a failed call means, in the neutral outcomes of
`domain.delivery`, for everything that talks to Telegram (the outbox's courier, the replies of
an update, the polling loop, the cosmetic calls that may fail).

- 429 with `retry_after`: `RetryAfter` (wait that long, then the same call again).
- 403 (blocked, deactivated, kicked) and 400 "chat not found": `Unreachable`.
- 5xx, 409 (another poller, a webhook being switched), 429 without `retry_after`, network
  errors, timeouts and answers that are not Telegram's JSON (a proxy's error page):
  `Transient` (try again with backoff).
- Any other refusal (400, 401, 404, 413, a chat that migrated): `Refused`.

Two ways in, one table: `failure_of` for the exceptions aiogram (or aiohttp) raises, and
`failure_of_answer` for an answer read as JSON (`handlers.telegram.replies` posts records
itself). `harmless` names the refusals of cosmetic calls that mean there was nothing to do."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

import aiohttp
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from domain.delivery import Failure, Refused, RetryAfter, Transient, Unreachable

NETWORK_ERRORS: Final = (aiohttp.ClientError, TimeoutError)
"""What posting a request yourself raises when Telegram cannot be reached."""

API_ERRORS: Final = (TelegramAPIError, ClientDecodeError, *NETWORK_ERRORS)
"""Every failure of a Bot API call; `failure_of` classifies each."""

# The exceptions aiogram raises for an answer, back to the answer's HTTP status.
_STATUS: Final[tuple[tuple[type[TelegramAPIError], int], ...]] = (
    (TelegramMigrateToChat, HTTPStatus.BAD_REQUEST),
    (TelegramBadRequest, HTTPStatus.BAD_REQUEST),
    (TelegramUnauthorizedError, HTTPStatus.UNAUTHORIZED),
    (TelegramForbiddenError, HTTPStatus.FORBIDDEN),
    (TelegramNotFound, HTTPStatus.NOT_FOUND),
    (TelegramConflictError, HTTPStatus.CONFLICT),
    (TelegramEntityTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (TelegramServerError, HTTPStatus.INTERNAL_SERVER_ERROR),
)

GONE: Final = ("chat not found",)
"""400 descriptions that mean the person is out of reach, like a 403."""

BENIGN_ERRORS: Final = (
    "message is not modified",
    "query is too old",
    "query id is invalid",
    "message to edit not found",
    "message to delete not found",
    "message can't be edited",
)
"""Refusals of a cosmetic call that leave nothing undone (a retried update's edit is there
already, its button press is too old to answer)."""

SOFT_METHODS: Final = frozenset(
    {
        "answerCallbackQuery",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
        "deleteMessage",
    }
)
"""The cosmetic calls: answering a button, editing or deleting a message."""


def failure_of(exc: BaseException) -> Failure:
    """What a failed call means; `exc` is one of `API_ERRORS` (anything else is a bug and is
    called `Refused`, so that it is not retried)."""
    if isinstance(exc, TelegramRetryAfter):
        return RetryAfter(float(exc.retry_after), exc.message)
    if isinstance(exc, TelegramEntityTooLarge):  # a TelegramNetworkError, but no network fault
        return Refused(exc.message)
    if isinstance(exc, TelegramNetworkError | ClientDecodeError):
        return Transient(exc.message)
    if isinstance(exc, NETWORK_ERRORS):
        return Transient(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, TelegramAPIError):
        for kind, status in _STATUS:
            if isinstance(exc, kind):
                return _by_status(status, exc.message)
        return Refused(exc.message)
    return Refused(f"{type(exc).__name__}: {exc}")


def failure_of_answer(status: int, answer: Mapping[str, Any]) -> Failure | None:
    """What Telegram's answer (`answer`: its JSON, {} when it was not JSON) means; None when
    the call was taken."""
    if HTTPStatus.OK <= status <= HTTPStatus.IM_USED and answer.get("ok") is True:
        return None
    description = str(answer.get("description") or f"HTTP {status}")
    parameters = answer.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(retry_after, int | float) and retry_after > 0:
        return RetryAfter(float(retry_after), description)
    if not answer and status < HTTPStatus.BAD_REQUEST:
        return Transient(description)  # not Telegram's JSON: a proxy in the way
    return _by_status(status, description)


def _by_status(status: int, description: str) -> Failure:
    if status == HTTPStatus.FORBIDDEN:
        return Unreachable(description)
    if status == HTTPStatus.BAD_REQUEST and any(text in description.lower() for text in GONE):
        return Unreachable(description)
    if status in (HTTPStatus.CONFLICT, HTTPStatus.TOO_MANY_REQUESTS):
        return Transient(description)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return Transient(description)
    return Refused(description)


def harmless(method: str, description: str) -> bool:
    """Whether a refusal of the Bot API method `method` ("editMessageText") left nothing
    undone: a cosmetic call with one of the `BENIGN_ERRORS`."""
    lowered = description.lower()
    return method in SOFT_METHODS and any(text in lowered for text in BENIGN_ERRORS)
