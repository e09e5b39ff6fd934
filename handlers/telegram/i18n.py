"""Which language a Telegram update is answered in: the core's rule (`domain.i18n
.choose_language`) with the user's Telegram language as the channel's hint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.types import TelegramObject, User

from domain.i18n import LANGUAGES, LOCALE_OF, Translator, choose_language


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
        hint = language_from_telegram(user.language_code) if user is not None else None
        if visitor is None:
            return LOCALE_OF[choose_language(None, hint, None)]
        return LOCALE_OF[visitor.language(hint)]
