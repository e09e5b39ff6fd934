"""Settings from the environment and an optional `.env`, validated once at start."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_SHAPE = re.compile(r"\d+:\S+")


class Settings(BaseSettings):
    """Everything Daka reads from its environment; tests build their own instance."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    database_url: str = "sqlite+aiosqlite:///daka.db"
    redis_url: str | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/telegram"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    send_rate: float = Field(default=25.0, gt=0, le=10_000)
    bot_username: str | None = Field(
        default=None, description="used for invite links when the bot cannot be asked (offline)"
    )

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # The shape aiogram's Bot() insists on, checked here so no command starts (or migrates
        # a database) with a token that cannot work; the token itself is never echoed.
        token = value.get_secret_value().strip() if value is not None else ""
        if not token:
            return None
        if not TOKEN_SHAPE.fullmatch(token):
            raise ValueError(
                "expected the bot's id, a colon and its secret, "
                "like 123456789:AAH4kV9b... (from @BotFather)"
            )
        return SecretStr(token)

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be Telegram user ids separated by commas") from None
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("telegram_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_chars(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - as secret_token.
        if value is not None:
            secret = value.get_secret_value()
            allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
            if not 1 <= len(secret) <= 256 or not set(secret) <= allowed:
                raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if (
            not value.startswith("/")
            or value in ("/healthz", "/metrics")
            or {"{", "}"} & set(value)
        ):
            raise ValueError("must start with /, have no { or }, and not be /healthz or /metrics")
        return value

    def require_webhook_secret(self) -> str:
        """The secret Telegram sends with each webhook delivery; webhooks refuse to run without."""
        if self.webhook_secret is None:
            raise SettingError("WEBHOOK_SECRET", "is required for webhook mode")
        return self.webhook_secret.get_secret_value()

    def require_token(self, purpose: str = "to run the bot") -> str:
        """The bot token, or a clear error (saying what needs it) for commands that talk to
        Telegram."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise SettingError("BOT_TOKEN", f"is required {purpose}")
        return self.bot_token.get_secret_value().strip()


class SettingError(Exception):
    """A setting is missing or malformed; the CLI prints it as one line and exits 2."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name} {problem}")
        self.name = name
        self.problem = problem


def load_settings() -> Settings:
    """Read settings, turning pydantic's report into one `SettingError` naming the variable."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "setting"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SettingError(name, f"is invalid: {message}") from None
