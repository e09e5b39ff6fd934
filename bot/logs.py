"""Log lines an operator can search (text or JSON, with the update and organisation they belong
to) and that never carry the bot token, the webhook secret or a database password."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TextIO
from urllib.parse import unquote, urlsplit

from domain.logcontext import CONTEXT_FIELDS, current_context

if TYPE_CHECKING:
    from bot.config import Settings

REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 4
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Shapes that are secret whatever the settings say: a Bot API token (also another bot's) and the
# password in a URL's user-info (`scheme://user:password@host`).
_TOKEN_SHAPE = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@", re.IGNORECASE)


class ContextFilter(logging.Filter):
    """Copies the context fields onto each record; a field passed in `extra=` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_context()
        for name in CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, fields.get(name))
        return True


class Redactor:
    """Replaces secrets, Bot API tokens and URL passwords in text with `[redacted]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a token is replaced whole before its hash part alone is looked at.
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self.secrets = sorted(unique, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = _TOKEN_SHAPE.sub(REDACTED, text)
        return _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)


class RedactingFilter(logging.Filter):
    """Redacts the message, the traceback and the stack of each record before it is formatted.

    aiohttp and aiogram errors can carry the request URL, which holds the token (`/bot<token>/`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(secrets)
        self._traceback = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True  # a broken format string: the handler reports it as logging does
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._traceback.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the context appended as `[update=123 org=demo]`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        labels = {"update_id": "update", "org": "org", "job": "job"}
        parts = [
            f"{labels[name]}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{line} [{' '.join(parts)}]" if parts else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler[TextIO]):
    """`configure_logging`'s handler: writes to `stream`, or to whatever `sys.stderr` is at the
    time of each record (tests swap it), as logging's last resort does."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream or sys.stderr)
        self.follows_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self.follows_stderr:
            self.stream = sys.stderr
        super().emit(record)


def configure_logging(
    level: str,
    fmt: Literal["text", "json"],
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log record to stderr (or `stream`) as text or JSON lines, with context fields
    and secrets redacted; replaces `logging.basicConfig` and may be called again."""
    handler = _Handler(stream)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())


def secrets_of(settings: Settings) -> list[str]:
    """What must never appear in a log: the token (and its hash part), the webhook secret, the
    WeCom apps' secrets, callback Tokens and EncodingAESKeys, and the passwords in DATABASE_URL
    and REDIS_URL, as written and percent-decoded."""
    found: list[str] = []
    if settings.bot_token is not None:
        token = settings.bot_token.get_secret_value().strip()
        found += [token, token.partition(":")[2]]
    if settings.webhook_secret is not None:
        found.append(settings.webhook_secret.get_secret_value())
    for wecom in (settings.wecom_secret, settings.wecom_token, settings.wecom_aes_key):
        if wecom is not None:
            found.append(wecom.get_secret_value())
    for app in settings.wecom_apps:  # the further apps' (WECOM_APPS)
        found += [s.get_secret_value() for s in (app.secret, app.token, app.aes_key)]
    for url in (settings.database_url, settings.redis_url):
        password = _url_password(url) if url else None
        if password:
            found += [password, unquote(password)]
    return [s for s in found if s]


def _url_password(url: str) -> str | None:
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    userinfo, at, _host = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return None
    return userinfo.split(":", 1)[1]
