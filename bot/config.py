"""Settings from the environment and an optional `.env`, validated once at start."""

from __future__ import annotations

import base64
import json
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TOKEN_SHAPE = re.compile(r"\d+:\S+")
WECOM_AES_KEY_SHAPE = re.compile(r"[A-Za-z0-9+/]{43}")
WECOM_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{1,32}")
MAX_AGENT_ID = 2**31


def _wecom_token_of(value: SecretStr | None) -> SecretStr | None:
    # The callback Token WeCom's admin console generates: up to 32 letters and digits.
    token = value.get_secret_value().strip() if value is not None else ""
    if not token:
        return None
    if not WECOM_TOKEN_SHAPE.fullmatch(token):
        raise ValueError("expected the callback Token: 1-32 letters and digits")
    return SecretStr(token)


def _wecom_aes_key_of(value: SecretStr | None) -> SecretStr | None:
    # 43 base64 characters decoding to the 32-byte AES key (Doc 91144); never echoed.
    key = value.get_secret_value().strip() if value is not None else ""
    if not key:
        return None
    if not WECOM_AES_KEY_SHAPE.fullmatch(key) or len(base64.b64decode(key + "=")) != 32:
        raise ValueError("expected the callback EncodingAESKey: 43 characters of A-Z, a-z and 0-9")
    return SecretStr(key)


def _path_of(value: str) -> str:
    if not value.startswith("/") or value in ("/healthz", "/metrics") or {"{", "}"} & set(value):
        raise ValueError("must start with /, have no { or }, and not be /healthz or /metrics")
    return value


def app_path(base: str, agent_id: int) -> str:
    """Where an app's callbacks come when its entry names no path: `WECOM_PATH/<agent_id>`."""
    return f"{base.rstrip('/')}/{agent_id}"


class WeComAppEntry(BaseModel):
    """A further self-built app of the same corporation (`WECOM_APPS`): the corp id and the
    API URL are the deployment's (`WECOM_CORP_ID`, `WECOM_API_URL`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: int = Field(ge=1, lt=MAX_AGENT_ID)
    secret: SecretStr
    token: SecretStr
    aes_key: SecretStr
    path: str | None = None

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("the app's Secret is empty")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        token = _wecom_token_of(value)
        if token is None:
            raise ValueError("the callback Token is empty")
        return token

    @field_validator("aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        key = _wecom_aes_key_of(value)
        if key is None:
            raise ValueError("the callback EncodingAESKey is empty")
        return key

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _path_of(value)


def read_wecom_apps(path: Path) -> list[Any]:
    """The entries of a `WECOM_APPS` file: TOML (`[[apps]]` tables) or, for a `.json` file, a
    JSON object with an "apps" list (or the list itself). Raises ValueError saying what is
    wrong with the file, never quoting a value."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    try:
        if path.suffix.lower() == ".json":
            document: Any = json.loads(raw)
        else:
            document = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        # tomllib and json name the line and column, not the text found there.
        raise ValueError(f"{path} is not {kind}: {str(exc).splitlines()[0]}") from None
    apps = document.get("apps") if isinstance(document, dict) else document
    if not isinstance(apps, list) or (isinstance(document, dict) and set(document) != {"apps"}):
        raise ValueError(f"{path} must hold a list of apps ([[apps]] tables) and nothing else")
    return apps


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

    @field_validator("webhook_path", "wecom_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _path_of(value)

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
        return _wecom_token_of(value)

    @field_validator("wecom_aes_key")
    @classmethod
    def _wecom_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        return _wecom_aes_key_of(value)

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
        base = info.data.get("wecom_path") or "/wecom"
        first = info.data.get("wecom_agent_id")
        agents: set[int] = {first} if first is not None else set()
        taken = {base, str(info.data.get("webhook_path") or "/telegram")}
        if first is not None:
            taken.add(app_path(base, first))
        # Callbacks are told apart by the Token and key they are signed and sealed with: two
        # apps sharing both would each take the other's at its path.
        token, key = info.data.get("wecom_token"), info.data.get("wecom_aes_key")
        sealed = {(token.get_secret_value(), key.get_secret_value())} if token and key else set()
        filled = []
        for entry in value:
            if entry.agent_id in agents:
                raise ValueError(f"agent_id {entry.agent_id} is named twice")
            agents.add(entry.agent_id)
            pair = (entry.token.get_secret_value(), entry.aes_key.get_secret_value())
            if pair in sealed:
                raise ValueError(
                    f"app {entry.agent_id} has the callback Token and EncodingAESKey of another "
                    "app: give each app its own"
                )
            sealed.add(pair)
            path = entry.path or app_path(base, entry.agent_id)
            if path in taken:
                raise ValueError(f"the path of app {entry.agent_id} ({path}) is taken already")
            taken.add(path)
            filled.append(entry.model_copy(update={"path": path}))
        return tuple(filled)

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
