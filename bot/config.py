"""Settings from the environment and an optional `.env`, validated once at start (the further
WeCom apps of `WECOM_APPS`: `bot.wecom_apps`)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.wecom_apps import MAX_AGENT_ID as MAX_AGENT_ID  # still importable from here
from bot.wecom_apps import WECOM_AES_KEY_SHAPE as WECOM_AES_KEY_SHAPE
from bot.wecom_apps import WECOM_TOKEN_SHAPE as WECOM_TOKEN_SHAPE
from bot.wecom_apps import (
    WeComAppEntry,
    app_path,
    callback_path_of,
    distinct_apps,
    read_wecom_apps,
    wecom_aes_key_of,
    wecom_token_of,
)

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
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"  # bot/loop.py
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/telegram"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    send_rate: float = Field(default=25.0, gt=0, le=10_000)
    bot_username: str | None = Field(
        default=None, description="used for invite links when the bot cannot be asked (offline)"
    )
    wecom_corp_id: str | None = None
    wecom_agent_id: int | None = Field(default=None, ge=0, lt=2**31)
    wecom_secret: SecretStr | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_url: str = "https://qyapi.weixin.qq.com"
    wecom_path: str = "/wecom"
    wecom_port: int = Field(default=8081, ge=0, le=65535)
    # Further apps of the corp: a TOML or JSON file (read once, at start), each app checked as
    # the first app's WECOM_* settings are; `wecom_apps` holds them with their paths filled in.
    wecom_apps: Annotated[tuple[WeComAppEntry, ...], NoDecode] = ()

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

    @field_validator("telegram_api_url", "wecom_api_url")
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

    @field_validator("log_format", "event_loop", mode="before")
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

    @field_validator("webhook_path", "wecom_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return callback_path_of(value)

    @field_validator("wecom_corp_id", "wecom_agent_id", "wecom_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # An empty line in .env (WECOM_SECRET=) means "not set", not "set to nothing".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("wecom_corp_id")
    @classmethod
    def _corp_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value.strip()):
            raise ValueError(
                "expected the corp id (企业ID) from My Company, like ww0123456789abcdef"
            )
        return value.strip() if value is not None else None

    @field_validator("wecom_token")
    @classmethod
    def _wecom_token(cls, value: SecretStr | None) -> SecretStr | None:
        return wecom_token_of(value)

    @field_validator("wecom_aes_key")
    @classmethod
    def _wecom_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        return wecom_aes_key_of(value)

    @field_validator("wecom_path")
    @classmethod
    def _own_path(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("webhook_path"):
            raise ValueError("must differ from WEBHOOK_PATH")
        return value

    @field_validator("wecom_apps", mode="before")
    @classmethod
    def _read_wecom_apps(cls, value: object) -> object:
        # WECOM_APPS names a file; a test may hand the entries over directly.
        if isinstance(value, str) and not value.strip():
            return ()
        if isinstance(value, str | Path):
            return read_wecom_apps(Path(value).expanduser())
        return value

    @field_validator("wecom_apps")
    @classmethod
    def _distinct_apps(
        cls, value: tuple[WeComAppEntry, ...], info: ValidationInfo
    ) -> tuple[WeComAppEntry, ...]:
        # Each app its own AgentId and its own callback path: the first app (WECOM_*) answers
        # at WECOM_PATH and WECOM_PATH/<its agent id>, another at its path or
        # WECOM_PATH/<its agent id>.
        token, key = info.data.get("wecom_token"), info.data.get("wecom_aes_key")
        return distinct_apps(
            value,
            base=info.data.get("wecom_path") or "/wecom",
            webhook_path=str(info.data.get("webhook_path") or "/telegram"),
            first_agent=info.data.get("wecom_agent_id"),
            first_sealed=(token, key) if token and key else None,
        )

    @property
    def wecom_agents(self) -> frozenset[int]:
        """The AgentIds of the apps this deployment is configured for (WECOM_AGENT_ID and
        WECOM_APPS): the apps `daka org set --wecom-agent` may name."""
        first = {self.wecom_agent_id} if self.wecom_agent_id is not None else set()
        return frozenset(first | {entry.agent_id for entry in self.wecom_apps})

    @property
    def serves_telegram(self) -> bool:
        """`daka run` polls Telegram: a bot token is set."""
        return self.bot_token is not None

    @property
    def serves_wecom(self) -> bool:
        """`daka run` serves WeCom's callbacks: a callback or API setting of the app is set
        (`WECOM_AGENT_ID` alone only names the app in invites)."""
        return any(
            value is not None
            for value in (
                self.wecom_corp_id,
                self.wecom_secret,
                self.wecom_token,
                self.wecom_aes_key,
            )
        ) or bool(self.wecom_apps)

    def require_wecom_senders(self, purpose: str = "to send on WeCom") -> list[WeComSender]:
        """What sending as each app of the deployment needs (`daka scheduler`, `daka remind`):
        the corp, the first app's AgentId and Secret (`WECOM_*`), the other apps' Secrets
        (`WECOM_APPS`); not the callback Token and EncodingAESKey, which only the process
        taking WeCom's callbacks uses. A clear error names the first one missing."""
        for name, value in (
            ("WECOM_CORP_ID", self.wecom_corp_id),
            ("WECOM_AGENT_ID", self.wecom_agent_id),
            ("WECOM_SECRET", self.wecom_secret),
        ):
            if value is None:
                raise SettingError(name, f"is required {purpose}")
        assert self.wecom_corp_id is not None and self.wecom_agent_id is not None
        assert self.wecom_secret is not None
        apps = [(self.wecom_agent_id, self.wecom_secret)]
        apps += [(entry.agent_id, entry.secret) for entry in self.wecom_apps]
        return [
            WeComSender(
                self.wecom_corp_id, agent_id, secret.get_secret_value(), self.wecom_api_url
            )
            for agent_id, secret in apps
        ]

    def require_wecom(self, purpose: str = "to serve WeCom") -> WeComSettings:
        """The WeCom app's settings, or a clear error naming the first one missing."""
        missing = [
            name
            for name, value in (
                ("WECOM_CORP_ID", self.wecom_corp_id),
                ("WECOM_AGENT_ID", self.wecom_agent_id),
                ("WECOM_SECRET", self.wecom_secret),
                ("WECOM_TOKEN", self.wecom_token),
                ("WECOM_AES_KEY", self.wecom_aes_key),
            )
            if value is None
        ]
        if missing:
            raise SettingError(missing[0], f"is required {purpose}")
        assert self.wecom_corp_id is not None and self.wecom_agent_id is not None
        assert self.wecom_secret is not None and self.wecom_token is not None
        assert self.wecom_aes_key is not None
        return WeComSettings(
            corp_id=self.wecom_corp_id,
            agent_id=self.wecom_agent_id,
            secret=self.wecom_secret.get_secret_value(),
            token=self.wecom_token.get_secret_value(),
            aes_key=self.wecom_aes_key.get_secret_value(),
            api_url=self.wecom_api_url,
            path=self.wecom_path,
            also=(app_path(self.wecom_path, self.wecom_agent_id),),
        )

    def require_wecom_apps(self, purpose: str = "to serve WeCom") -> list[WeComSettings]:
        """Every app of the deployment, the first (`WECOM_*`) first: one corp, one API URL,
        each app its AgentId, Secret, callback Token and EncodingAESKey, and path."""
        first = self.require_wecom(purpose)
        return [first] + [
            WeComSettings(
                corp_id=first.corp_id,
                agent_id=entry.agent_id,
                secret=entry.secret.get_secret_value(),
                token=entry.token.get_secret_value(),
                aes_key=entry.aes_key.get_secret_value(),
                api_url=first.api_url,
                path=entry.path or app_path(first.path, entry.agent_id),
            )
            for entry in self.wecom_apps
        ]

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


@dataclass(frozen=True, slots=True)
class WeComSender:
    """One WeCom self-built app as a sender sees it: what its API client needs."""

    corp_id: str
    agent_id: int
    secret: str = field(repr=False)
    api_url: str


@dataclass(frozen=True, slots=True)
class WeComSettings:
    """One WeCom self-built app, complete: what the callback and the API client need."""

    corp_id: str
    agent_id: int
    secret: str = field(repr=False)
    token: str = field(repr=False)
    aes_key: str = field(repr=False)
    api_url: str
    path: str
    also: tuple[str, ...] = ()  # further paths it answers at (the first app: WECOM_PATH/<id>)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the app's callbacks are served at."""
        return (self.path, *self.also)


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
        if len(first["loc"]) > 1:  # inside WECOM_APPS: which app, which key
            where = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"][1:]
            )
            message = f"apps{where}: {message}"
        raise SettingError(name, f"is invalid: {message}") from None
