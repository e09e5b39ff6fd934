"""Which language a Telegram update is answered in: the user's `/language` choice, their
Telegram language, then the organisation's default (the translator itself is `domain.i18n`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.types import TelegramObject, User

from domain.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALE_OF, Translator


def language_from_telegram(code: str | None) -> str | None:
    """Map Telegram's `language_code` ("zh-hans", "en-GB") to a language we speak, if any."""
    if not code:
        return None
    head = code.lower().replace("_", "-").split("-")[0]
    return head if head in LANGUAGES else None


class LanguageMiddleware(BaseMiddleware):
    """Speaks the visitor's language while the update is handled; hands `i18n` to handlers."""

    def __init__(self, i18n: Translator) -> None:
        self.i18n = i18n

    def setup(self, router: Router) -> None:
        for event_name, observer in router.observers.items():
            if event_name != "update":
                observer.outer_middleware(self)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["i18n"] = self.i18n
        with self.i18n.context(), self.i18n.use_locale(self.locale(data)):
            return await handler(event, data)

    @staticmethod
    def locale(data: dict[str, Any]) -> str:
        visitor = data.get("visitor")
        user: User | None = data.get("event_from_user")
        language = None
        if visitor is not None and visitor.account is not None:
            language = visitor.account.language
        if language is None and user is not None:
            language = language_from_telegram(user.language_code)
        if language is None and visitor is not None and visitor.org_language:
            language = visitor.org_language
        return LOCALE_OF.get(language or DEFAULT_LANGUAGE, LOCALE_OF[DEFAULT_LANGUAGE])
