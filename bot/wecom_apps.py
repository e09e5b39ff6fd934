"""The further WeCom apps of a deployment (`WECOM_APPS`, a TOML or JSON file): each entry read
and checked (its AgentId, Secret, callback Token, EncodingAESKey and path), and the entries
checked together against the first app (`WECOM_*`); `bot.config.Settings` reads them."""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

WECOM_AES_KEY_SHAPE = re.compile(r"[A-Za-z0-9+/]{43}")
WECOM_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9]{1,32}")
MAX_AGENT_ID = 2**31


def wecom_token_of(value: SecretStr | None) -> SecretStr | None:
    """The callback Token trimmed, None when blank; ValueError when malformed."""
    # The callback Token WeCom's admin console generates: up to 32 letters and digits.
    token = value.get_secret_value().strip() if value is not None else ""
    if not token:
        return None
    if not WECOM_TOKEN_SHAPE.fullmatch(token):
        raise ValueError("expected the callback Token: 1-32 letters and digits")
    return SecretStr(token)


def wecom_aes_key_of(value: SecretStr | None) -> SecretStr | None:
    """The callback EncodingAESKey trimmed, None when blank; ValueError when malformed."""
    # 43 base64 characters decoding to the 32-byte AES key (Doc 91144); never echoed.
    key = value.get_secret_value().strip() if value is not None else ""
    if not key:
        return None
    if not WECOM_AES_KEY_SHAPE.fullmatch(key) or len(base64.b64decode(key + "=")) != 32:
        raise ValueError("expected the callback EncodingAESKey: 43 characters of A-Z, a-z and 0-9")
    return SecretStr(key)


def callback_path_of(value: str) -> str:
    """A path callbacks come to (Telegram's webhook, a WeCom app's), checked."""
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
        token = wecom_token_of(value)
        if token is None:
            raise ValueError("the callback Token is empty")
        return token

    @field_validator("aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr) -> SecretStr:
        key = wecom_aes_key_of(value)
        if key is None:
            raise ValueError("the callback EncodingAESKey is empty")
        return key

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else callback_path_of(value)


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


def distinct_apps(
    entries: tuple[WeComAppEntry, ...],
    *,
    base: str,
    webhook_path: str,
    first_agent: int | None,
    first_sealed: tuple[SecretStr, SecretStr] | None,
) -> tuple[WeComAppEntry, ...]:
    """The entries with their paths filled in, each checked to be an app of its own beside the
    first app (WECOM_*, at `base` and `base/<agent id>`, sealed with `first_sealed`): its own
    AgentId, callback path, and Token and EncodingAESKey. ValueError says which is not."""
    agents: set[int] = {first_agent} if first_agent is not None else set()
    taken = {base, webhook_path}
    if first_agent is not None:
        taken.add(app_path(base, first_agent))
    # Callbacks are told apart by the Token and key they are signed and sealed with: two
    # apps sharing both would each take the other's at its path.
    sealed = (
        {(first_sealed[0].get_secret_value(), first_sealed[1].get_secret_value())}
        if first_sealed is not None
        else set()
    )
    filled = []
    for entry in entries:
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
