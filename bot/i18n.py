"""Translations: gettext catalogs (.po) read with Babel at start, no compile step to forget."""

from __future__ import annotations

import gettext
import io
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from aiogram.utils.i18n import gettext as _gettext
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
LANGUAGES = ("zh", "en")
LOCALE_OF = {"zh": "zh_Hans", "en": "en"}
LANGUAGE_OF = {v: k for k, v in LOCALE_OF.items()}
DEFAULT_LANGUAGE = "zh"

_ = _gettext


class CatalogI18n(I18n):
    """aiogram's I18n, loading the .po files directly."""

    @contextmanager
    def context(self) -> Generator[I18n, None, None]:
        # aiogram's `gettext` looks for the current `I18n`, and each subclass of its context
        # mixin gets a context variable of its own: publish this instance under `I18n`'s.
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        translations: dict[str, gettext.GNUTranslations] = {}
        for po_path in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            locale = po_path.parent.parent.name
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translations[locale] = gettext.GNUTranslations(buffer)
        return translations


def create_i18n() -> CatalogI18n:
    """The shared translator; its default locale is Chinese, Daka's first language."""
    return CatalogI18n(path=LOCALES_DIR, default_locale=LOCALE_OF[DEFAULT_LANGUAGE], domain=DOMAIN)


def language_from_telegram(code: str | None) -> str | None:
    """Map Telegram's `language_code` ("zh-hans", "en-GB") to a language we speak, if any."""
    if not code:
        return None
    head = code.lower().replace("_", "-").split("-")[0]
    return head if head in LANGUAGES else None


def current_language() -> str:
    """The language of the update being handled ("zh" or "en"), for form texts."""
    i18n = I18n.get_current(no_error=True)
    locale = i18n.current_locale if i18n else LOCALE_OF[DEFAULT_LANGUAGE]
    return LANGUAGE_OF.get(locale, DEFAULT_LANGUAGE)


class DakaI18nMiddleware(I18nMiddleware):
    """Chooses the language: the user's `/language` choice, their Telegram language, then the
    organisation's default."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
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
