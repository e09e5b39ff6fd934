"""Translations for every channel: the gettext catalogs (.po, read with Babel at start, so there is
no compile step to forget) and the locale of the conversation being handled, in a context variable
that each adapter, the scheduler and the CLI set around their work."""

from __future__ import annotations

import functools
import gettext as _gettext_module
import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy

LOCALES_DIR = Path(__file__).with_name("locales")
DOMAIN = "messages"
LANGUAGES = ("zh", "en")
LOCALE_OF = {"zh": "zh_Hans", "en": "en"}
LANGUAGE_OF = {v: k for k, v in LOCALE_OF.items()}
DEFAULT_LANGUAGE = "zh"
DEFAULT_LOCALE = LOCALE_OF[DEFAULT_LANGUAGE]

_translator: ContextVar[Translator | None] = ContextVar("daka_translator", default=None)
_locale: ContextVar[str | None] = ContextVar("daka_locale", default=None)


class Translator:
    """The catalogs of every locale; a missing entry falls back to the msgid (English)."""

    def __init__(
        self, path: Path = LOCALES_DIR, default_locale: str = DEFAULT_LOCALE, domain: str = DOMAIN
    ) -> None:
        self.path = path
        self.domain = domain
        self.default_locale = default_locale
        self.locales = self._load()

    @property
    def available_locales(self) -> tuple[str, ...]:
        return tuple(self.locales)

    @property
    def current_locale(self) -> str:
        return _locale.get() or self.default_locale

    @contextmanager
    def context(self) -> Iterator[Translator]:
        """Make this translator the one `gettext` uses inside the block."""
        token = _translator.set(self)
        try:
            yield self
        finally:
            _translator.reset(token)

    @contextmanager
    def use_locale(self, locale: str) -> Iterator[None]:
        """Speak `locale` inside the block."""
        token = _locale.set(locale)
        try:
            yield
        finally:
            _locale.reset(token)

    def gettext(
        self, singular: str, plural: str | None = None, n: int = 1, locale: str | None = None
    ) -> str:
        catalog = self.locales.get(locale or self.current_locale)
        if catalog is None:
            return singular if plural is None or n == 1 else plural
        if plural is None:
            return catalog.gettext(singular)
        return catalog.ngettext(singular, plural, n)

    def _load(self) -> dict[str, _gettext_module.GNUTranslations]:
        translations: dict[str, _gettext_module.GNUTranslations] = {}
        for po_path in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            locale = po_path.parent.parent.name
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translations[locale] = _gettext_module.GNUTranslations(buffer)
        return translations


def choose_language(
    account_language: str | None, hint: str | None, org_language: str | None
) -> str:
    """The language a person is answered in, the same on every channel: the one they chose
    (/language), else the one their channel says they use, else their organisation's, else
    Daka's default; a value Daka does not speak is passed over."""
    spoken = (each for each in (account_language, hint, org_language) if each in LANGUAGES)
    return next(spoken, DEFAULT_LANGUAGE)


@functools.cache
def create_translator() -> Translator:
    """The shared translator (the catalogs are read once per process)."""
    return Translator()


def current() -> Translator:
    return _translator.get() or create_translator()


def gettext(
    singular: str, plural: str | None = None, n: int = 1, locale: str | None = None
) -> str:
    """The text in the current conversation's locale."""
    return current().gettext(singular, plural, n, locale)


def lazy_gettext(singular: str, plural: str | None = None, n: int = 1) -> LazyProxy:
    """A text translated each time it is used (for module-level constants)."""
    return LazyProxy(gettext, singular, plural, n, enable_cache=False)


_ = gettext
__ = lazy_gettext


def set_locale(locale: str) -> Token[str | None]:
    return _locale.set(locale)


def reset_locale(token: Token[str | None]) -> None:
    _locale.reset(token)


@contextmanager
def speaking(language: str | None) -> Iterator[None]:
    """Speak `language` ("zh", "en"; None: the default) inside the block."""
    token = _locale.set(LOCALE_OF.get(language or DEFAULT_LANGUAGE, DEFAULT_LOCALE))
    try:
        yield
    finally:
        _locale.reset(token)


def current_language() -> str:
    """The language of the conversation being handled ("zh" or "en"), for form texts."""
    return LANGUAGE_OF.get(current().current_locale, DEFAULT_LANGUAGE)
