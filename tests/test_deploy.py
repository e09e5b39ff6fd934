"""deploy/compose.yaml and its Caddyfile, checked without a Docker engine: every Daka container
runs a command `daka` accepts, exactly one replica sets the webhook, start order waits for health
and migrations, and secrets come from deploy/.env only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_parser
from bot.cli.wecom import rewrite
from bot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "deploy" / "compose.yaml"
CADDYFILE = ROOT / "deploy" / "Caddyfile"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"

SECRET_SETTINGS = ("BOT_TOKEN", "WEBHOOK_SECRET", "POSTGRES_PASSWORD")
INTERPOLATION = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?:(?::?[-?])[^}]*)?\}")
SAMPLE_ENV = {"PUBLIC_URL": "https://daka.example.org", "POSTGRES_PASSWORD": "pw"}
CADDY_PLACEHOLDER = re.compile(r"\{\$([A-Z_][A-Z0-9_]*)(?::([^}]*))?\}")


def interpolate(value: str) -> str:
    """What compose makes of `${VAR}`, `${VAR:-default}` and `${VAR:?error}` with sample values."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in SAMPLE_ENV:
            return SAMPLE_ENV[name]
        default = re.match(r"\$\{[A-Z0-9_]+:?-(.*)\}", match.group(0))
        assert default is not None, f"{match.group(0)} has no sample value and no default"
        return default.group(1)

    return INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def daka_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in services.items()
        if str(service.get("image", "")).startswith("${DAKA_IMAGE")
    }


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    assert isinstance(command, list), "commands are lists, so no shell splits them"
    return [interpolate(str(part)) for part in command]


def webhook_services(services: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    return {
        name: command_of(service)
        for name, service in daka_services(services).items()
        if command_of(service)[0] == "webhook"
    }


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_services_of_a_large_deployment_are_there(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "migrate", "bot-1", "bot-2", "scheduler", "caddy"} <= set(
        services
    )
    assert set(daka_services(services)) == {"migrate", "bot-1", "bot-2", "scheduler", "wecom"}
    assert str(services["postgres"]["image"]).startswith("postgres:16")
    assert str(services["redis"]["image"]).startswith("redis:7")


@pytest.mark.parametrize("name", ["migrate", "bot-1", "bot-2", "scheduler", "wecom"])
def test_each_daka_container_runs_a_command_daka_accepts(
    services: dict[str, Any], name: str
) -> None:
    command = command_of(services[name])
    assert command[0] != "daka", "the image's entry point is already `daka`"
    try:
        args = build_parser().parse_args(rewrite(command))
    except SystemExit:
        pytest.fail(f"{name}: `daka {' '.join(command)}` is rejected by bot.cli's parser")
    expected = {
        "migrate": ("db", "upgrade"),
        "bot-1": ("webhook", None),
        "bot-2": ("webhook", None),
        "scheduler": ("scheduler", None),
        "wecom": ("wecom", "serve"),
    }[name]
    assert (args.command, getattr(args, "action", None)) == expected


def test_exactly_one_replica_sets_the_webhook(services: dict[str, Any]) -> None:
    replicas = webhook_services(services)
    assert len(replicas) >= 2
    setters = [name for name, command in replicas.items() if "--no-set-webhook" not in command]
    assert setters == ["bot-1"]
    for command in replicas.values():
        assert option(command, "--host") == "0.0.0.0"
        assert option(command, "--url") == SAMPLE_ENV["PUBLIC_URL"]


def test_long_running_containers_are_healthy_only_when_their_healthz_answers(
    services: dict[str, Any],
) -> None:
    ports = {
        name: option(command, "--port") for name, command in webhook_services(services).items()
    }
    ports["scheduler"] = option(command_of(services["scheduler"]), "--metrics-port")
    for name, port in ports.items():
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check, name
        assert check.startswith("CMD python -c "), "the image has python but no curl"


def test_start_order_waits_for_health_and_migrations(services: dict[str, Any]) -> None:
    def conditions(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()}

    assert conditions("migrate") == {"postgres": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    for name in webhook_services(services):
        assert conditions(name) == {
            "postgres": "service_healthy",
            "redis": "service_healthy",
            "migrate": "service_completed_successfully",
        }
    # The scheduler and WeCom's server keep one count per member in Redis (docs/wecom.md).
    assert conditions("scheduler") == conditions("wecom") == conditions("bot-1")
    assert set(conditions("caddy")) == set(webhook_services(services)) | {"wecom"}
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert any("/var/lib/postgresql/data" in v for v in services["postgres"]["volumes"])


def test_daka_containers_share_the_production_settings(services: dict[str, Any]) -> None:
    for name, service in daka_services(services).items():
        env = {key: interpolate(str(value)) for key, value in service["environment"].items()}
        assert env["LOG_FORMAT"] == "json", name
        assert env["REDIS_URL"] == "redis://redis:6379/0", name
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://"), name
        settings = Settings(
            _env_file=None,
            database_url=env["DATABASE_URL"],
            redis_url=env["REDIS_URL"],
            log_format=env["LOG_FORMAT"],
        )
        assert settings.database_url.endswith("@postgres:5432/daka")


def test_secrets_come_from_the_env_file_and_nothing_runs_as_root(
    services: dict[str, Any],
) -> None:
    for name, service in daka_services(services).items():
        env_files = service["env_file"]
        assert (env_files if isinstance(env_files, list) else [env_files]) == [".env"], name
    for name, service in services.items():
        environment = service.get("environment", {})
        assert not {"BOT_TOKEN", "WEBHOOK_SECRET"} & set(environment), name
        for key, value in environment.items():
            if "PASSWORD" in key or "://" in str(value):
                assert "${POSTGRES_PASSWORD" in str(value) or "@" not in str(value), (name, key)
        assert str(service.get("user", "")).split(":")[0] not in {"root", "0"}, name
        assert not service.get("privileged", False), name
    text = COMPOSE.read_text(encoding="utf-8")
    for secret in SECRET_SETTINGS:
        assert not re.search(rf"^\s*{secret}\s*[:=]\s*[^$\s]", text, re.MULTILINE), secret


def test_caddy_terminates_tls_and_balances_over_every_replica(services: dict[str, Any]) -> None:
    caddy = services["caddy"]
    assert "443:443" in caddy["ports"], "Telegram posts webhooks to ports 443, 80, 88 or 8443"
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in caddy["volumes"]
    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy ([^{\n]+)", caddyfile)
    assert upstreams is not None
    for name, command in webhook_services(services).items():
        assert f"{name}:{option(command, '--port')}" in upstreams.group(1).split()
    assert "{$PUBLIC_URL}" in caddyfile
    assert "path {$WEBHOOK_PATH:/telegram}" in caddyfile
    assert "health_uri /healthz" in caddyfile
    assert "/metrics" not in caddyfile.split("{$PUBLIC_URL}", 1)[1], "metrics stay internal"


def test_the_image_exposes_the_webhook_port(services: dict[str, Any]) -> None:
    exposed = re.findall(r"^EXPOSE\s+(.+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    ports = {port for line in exposed for port in line.split()}
    for command in webhook_services(services).values():
        assert option(command, "--port") in ports
    assert option(command_of(services["wecom"]), "--port") in ports


def caddy_value(text: str, caddy: dict[str, Any]) -> str:
    """Caddyfile `{$VAR:default}`s as Caddy reads them in compose's `caddy` container, whose
    environment is read with the sample deploy/.env (WECOM_* unset: compose's defaults)."""
    env = {k: interpolate(str(v)) for k, v in caddy["environment"].items()}
    return CADDY_PLACEHOLDER.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text)


def test_caddy_forwards_the_wecom_callback_path_to_the_wecom_port(
    services: dict[str, Any],
) -> None:
    """WeCom verifies the callback URL with a GET and posts events to it: Caddy forwards both,
    on WECOM_PATH, to the one `wecom` container on the port it listens on (WECOM_PORT, 8081),
    and those paths are the ones the settings give Daka."""
    caddy, wecom = services["caddy"], services["wecom"]
    assert wecom["profiles"] == ["wecom"], "started only where WeCom is set up"
    command = command_of(wecom)
    assert option(command, "--host") == "0.0.0.0"
    port = option(command, "--port")
    assert port == str(Settings(_env_file=None).wecom_port) == "8081"
    assert interpolate(str(wecom["expose"][0])) == port
    check = interpolate(" ".join(wecom["healthcheck"]["test"]))
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert {dep: s["condition"] for dep, s in wecom["depends_on"].items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    assert "replicas" not in wecom.get("deploy", {}), "one replica: per-member order is in-process"

    caddyfile = CADDYFILE.read_text(encoding="utf-8")
    matcher = re.search(r"@wecom \{([^}]*\}[^}]*)\}", caddyfile)
    assert matcher is not None, "no @wecom matcher in the Caddyfile"
    lines = [
        line.strip() for line in caddy_value(matcher.group(1), caddy).splitlines() if line.strip()
    ]
    assert set(lines) == {"method GET POST", f"path {Settings(_env_file=None).wecom_path}"}
    handle = caddyfile.split("handle @wecom", 1)[1].split("\n\thandle", 1)[0]
    upstream = re.search(r"reverse_proxy (\S+)", handle)
    assert upstream is not None
    assert caddy_value(upstream.group(1), caddy) == f"wecom:{port}"
    # The paths differ, and neither route shadows the other.
    paths = caddy_value("{$WECOM_PATH:/wecom} {$WEBHOOK_PATH:/telegram}", caddy).split()
    assert paths == ["/wecom", "/telegram"]
    assert "{$WECOM_PORT:8081}" in handle and "{$WECOM_PATH:/wecom}" in caddyfile


def test_the_env_example_names_every_variable_with_a_comment(compose: dict[str, Any]) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    named = {
        m.group(1): i
        for i, line in enumerate(lines)
        if (m := re.match(r"^#? ?([A-Z][A-Z0-9_]*)=", line))
    }
    used = set(INTERPOLATION.findall(COMPOSE.read_text(encoding="utf-8")))
    settings = {name.upper() for name in Settings.model_fields}
    assert used | settings <= set(named), sorted((used | settings) - set(named))
    for name, i in named.items():
        if name not in ("DATABASE_URL", "REDIS_URL", "LOG_FORMAT"):
            assert lines[i - 1].startswith("# "), f"{name} has no comment above it"
    # Secrets are blanks to fill in, never sample values.
    for secret in SECRET_SETTINGS:
        assert re.search(rf"^{secret}=$", text, re.MULTILINE), secret
    # What compose sets itself is shown commented out, as it is overridden.
    for name in compose["x-daka"]["environment"]:
        assert lines[named[name]].startswith("# "), name


def enabled(services: dict[str, Any], profiles: set[str]) -> set[str]:
    """The services `docker compose up` starts with COMPOSE_PROFILES=`profiles`."""
    return {
        name
        for name, service in services.items()
        if not service.get("profiles") or profiles & set(service["profiles"])
    }


@pytest.mark.parametrize(
    ("profiles", "channels"),
    [
        ({"telegram"}, {"bot-1", "bot-2"}),
        ({"wecom"}, {"wecom"}),
        ({"telegram", "wecom"}, {"bot-1", "bot-2", "wecom"}),
    ],
)
def test_each_channel_is_a_profile_and_the_scheduler_serves_them_all(
    services: dict[str, Any], profiles: set[str], channels: set[str]
) -> None:
    """A WeCom-only deployment (COMPOSE_PROFILES=wecom, no BOT_TOKEN) starts no webhook replica
    (which would exit for want of a token, and be restarted, forever); the scheduler is always
    there and sends on whichever channels are set up. Every dependency on a service another
    profile leaves out is optional, or Compose would refuse to start."""
    running = enabled(services, profiles)
    assert running == {"postgres", "redis", "migrate", "scheduler", "caddy"} | channels
    for name in running:
        for dep, spec in services[name].get("depends_on", {}).items():
            assert dep in running or spec.get("required") is False, (name, dep)


def test_the_env_example_serves_telegram_unless_told_and_explains_wecom_alone() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert re.search(r"^COMPOSE_PROFILES=telegram$", text, re.MULTILINE)
    above = text.split("\nCOMPOSE_PROFILES=", 1)[0].rsplit("\n\n", 1)[1]
    assert "telegram,wecom" in above and "wecom" in above
    wecom_only = Settings(
        _env_file=None,
        bot_token="",  # BOT_TOKEN= left empty, as deploy/.env has it for WeCom alone
        wecom_corp_id="wwdaka0000000001",
        wecom_agent_id=1000002,
        wecom_secret="s",
        wecom_token="t",
        wecom_aes_key="a" * 43,
    )
    assert not wecom_only.serves_telegram and wecom_only.serves_wecom
