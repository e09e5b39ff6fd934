"""Logs an operator can grep and ship: JSON lines with context, and never the bot's secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.config import Settings
from bot.logs import configure_logging, secrets_of
from domain.logcontext import bind, current_context, log_context, unbind

TOKEN = "123456789:AAH4kV9bq3cQ-zx_8YpL2mN0rS5tU7wXyZa"
SECRET = "hook-secret_0123456789"
API_URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"

log = logging.getLogger("daka.test")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines(stream)]


def test_json_format_writes_one_object_per_line_with_utc_time() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)

    log.info("slot %s claimed for %d units", "remind@08:00", 12)
    log.warning("第一中学: 3 reminders failed")

    first, second = json_lines(out)
    assert first["level"] == "INFO"
    assert first["logger"] == "daka.test"
    assert first["message"] == "slot remind@08:00 claimed for 12 units"
    assert "update_id" not in first and "org" not in first and "exception" not in first
    time = datetime.fromisoformat(str(first["time"]))
    assert time.utcoffset() is not None and time.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - time).total_seconds()) < 60
    assert second["level"] == "WARNING"
    assert second["message"] == "第一中学: 3 reminders failed"


def test_context_fields_appear_while_the_block_runs_and_nest() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)

    with log_context(update_id=123, org="no1-school"):
        log.info("handled")
        with log_context(job="retention"):
            log.info("inner")
        log.info("after inner")
    log.info("outside")

    handled, inner, after, outside = json_lines(out)
    assert (handled["update_id"], handled["org"]) == (123, "no1-school")
    assert "job" not in handled
    assert (inner["update_id"], inner["org"], inner["job"]) == (123, "no1-school", "retention")
    assert "job" not in after and after["org"] == "no1-school"
    assert not {"update_id", "org", "job"} & outside.keys()


def test_bind_adds_fields_until_unbound_or_until_the_enclosing_block_ends() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)

    with log_context(update_id=7):
        bind(org="demo")  # the organisation is known only once the member is loaded
        log.info("loaded")
        assert current_context() == {"update_id": 7, "org": "demo"}
    log.info("next update")
    token = bind(job="tick")
    log.info("ticking")
    unbind(token)
    log.info("idle")

    loaded, next_update, ticking, idle = json_lines(out)
    assert (loaded["update_id"], loaded["org"]) == (7, "demo")
    assert "org" not in next_update and "update_id" not in next_update
    assert ticking["job"] == "tick"
    assert "job" not in idle


async def test_concurrent_updates_keep_their_own_context() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)

    async def handle(update_id: int, org: str) -> None:
        with log_context(update_id=update_id, org=org):
            await asyncio.sleep(0)
            log.info("start")
            await asyncio.sleep(0.01)
            log.info("done")

    await asyncio.gather(handle(1, "school-a"), handle(2, "village-b"))

    pairs = sorted((str(r["update_id"]), str(r["org"])) for r in json_lines(out))
    assert pairs == [("1", "school-a"), ("1", "school-a"), ("2", "village-b"), ("2", "village-b")]


def test_extra_fields_win_over_the_context() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)

    with log_context(org="demo"):
        log.info("for another organisation", extra={"org": "other"})

    assert json_lines(out)[0]["org"] == "other"


def test_token_in_a_message_is_redacted() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", secrets=[TOKEN, SECRET], stream=out)

    log.info("POST %s failed", API_URL)
    log.info("secret header was %s", SECRET)

    sent, header = json_lines(out)
    assert TOKEN not in out.getvalue() and SECRET not in out.getvalue()
    assert sent["message"] == "POST https://api.telegram.org/bot[redacted]/sendMessage failed"
    assert header["message"] == "secret header was [redacted]"


def test_token_inside_an_exception_traceback_is_redacted() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", secrets=[TOKEN], stream=out)

    try:
        raise ConnectionError(f"Cannot connect to host for url {API_URL}")
    except ConnectionError:
        log.exception("sending failed")

    (record,) = json_lines(out)
    assert TOKEN not in out.getvalue()
    assert TOKEN.split(":")[1] not in out.getvalue()
    exception = str(record["exception"])
    assert exception.startswith("Traceback (most recent call last):")
    assert "ConnectionError: Cannot connect to host for url" in exception
    assert "/bot[redacted]/sendMessage" in exception


def test_token_shaped_strings_and_url_passwords_are_redacted_unconfigured() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", stream=out)

    log.info("other bot: %s", "987654321:ZZH4kV9bq3cQ-zx_8YpL2mN0rS5tU7wXyZa")
    log.error("cannot connect to postgresql+asyncpg://daka:s3cr3t-pw@postgres:5432/daka")

    other, database = lines(out)
    assert other.endswith("other bot: [redacted]")
    assert database.endswith("postgresql+asyncpg://daka:[redacted]@postgres:5432/daka")


def test_secrets_of_settings_cover_token_webhook_secret_and_passwords() -> None:
    settings = Settings(
        _env_file=None,
        bot_token=TOKEN,
        webhook_secret=SECRET,
        database_url="postgresql+asyncpg://daka:p%40ss-word@postgres:5432/daka",
        redis_url="redis://:redis-pass@redis:6379/0",
    )

    found = secrets_of(settings)

    assert {TOKEN, TOKEN.split(":")[1], SECRET, "p%40ss-word", "p@ss-word", "redis-pass"} <= set(
        found
    )
    out = io.StringIO()
    configure_logging("INFO", "json", secrets=found, stream=out)
    log.info("password p@ss-word, hash %s", TOKEN.split(":")[1])
    assert json_lines(out)[0]["message"] == "password [redacted], hash [redacted]"


def test_secrets_of_default_settings_is_empty() -> None:
    assert secrets_of(Settings(_env_file=None)) == []


def test_text_format_is_one_line_with_the_context_appended() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "text", secrets=[TOKEN], stream=out)

    with log_context(update_id=123, org="demo"):
        log.debug("calling %s", API_URL)
    log.info("no context")

    with_context, without = lines(out)
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} DEBUG daka\.test: calling (.*) \[(.*)\]"
    match = re.fullmatch(pattern, with_context)
    assert match is not None, with_context
    assert match.group(1) == "https://api.telegram.org/bot[redacted]/sendMessage"
    assert match.group(2) == "update=123 org=demo"
    assert without.endswith("INFO daka.test: no context")


def test_text_format_redacts_tracebacks_too() -> None:
    out = io.StringIO()
    configure_logging("INFO", "text", secrets=[TOKEN], stream=out)

    try:
        raise RuntimeError(API_URL)
    except RuntimeError:
        log.exception("boom")

    assert TOKEN not in out.getvalue()
    assert "RuntimeError: https://api.telegram.org/bot[redacted]/sendMessage" in out.getvalue()


def test_level_is_respected() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)

    log.debug("hidden")
    log.info("hidden too")
    log.warning("shown")
    log.error("shown too")

    assert [r["message"] for r in json_lines(out)] == ["shown", "shown too"]


def test_configuring_again_replaces_the_handler_instead_of_doubling_lines() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "text", stream=first)
    configure_logging("INFO", "json", stream=second)

    log.info("once")

    assert first.getvalue() == ""
    assert [r["message"] for r in json_lines(second)] == ["once"]


def test_default_stream_is_stderr_at_the_time_of_logging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json", secrets=[TOKEN])

    log.info("to stderr %s", TOKEN)

    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err.splitlines()[-1])["message"] == "to stderr [redacted]"


def test_a_broken_format_string_does_not_raise_at_the_call_site() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    logging.raiseExceptions = False
    try:
        log.info("two %s %s", "one")
    finally:
        logging.raiseExceptions = True
    log.info("still logging")

    assert [r["message"] for r in json_lines(out)] == ["still logging"]


def test_secrets_of_settings_cover_the_wecom_app() -> None:
    settings = Settings(
        _env_file=None,
        wecom_secret="the-app-secret",
        wecom_token="QDG6eK",
        wecom_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    )

    assert {"the-app-secret", "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"} <= set(
        secrets_of(settings)
    )


def test_secrets_of_settings_cover_every_app_of_wecom_apps() -> None:
    settings = Settings(
        _env_file=None,
        wecom_agent_id=1000002,
        wecom_apps=[
            {
                "agent_id": 1000003,
                "secret": "the-second-secret",
                "token": "SecondToken",
                "aes_key": "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
            }
        ],
    )

    assert {
        "the-second-secret",
        "SecondToken",
        "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut",
    } <= set(secrets_of(settings))
    assert "the-second-secret" not in repr(settings)
