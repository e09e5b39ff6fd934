"""`daka run` (and `remind`, `retention`) when the settings or Telegram are wrong: one line naming
what to fix, no database made for nothing, no leftovers (an unclosed HTTP session) after it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.bot.test_cli import ROOT, daka
from tests.fakebot import FakeBotAPI
from tests.fakewecom import CallbackDriver


def closed_port() -> int:
    """A port nothing listens on (bound once by us, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def env(bare_env: Path) -> Path:
    """No database yet: these tests show what happens before one is touched."""
    return bare_env


def test_a_malformed_token_is_one_line_exit_2_and_creates_no_database(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "abc")
    code, out, err = daka(capsys, "run")
    assert (code, out) == (2, "")
    assert err.strip() == (
        "daka: setting BOT_TOKEN is invalid: expected the bot's id, a colon and its secret, "
        "like 123456789:AAH4kV9b... (from @BotFather)"
    )
    assert "abc" not in err  # the token is a secret, even a wrong one
    assert list(env.glob("daka.db*")) == []


def test_unreachable_telegram_is_one_line_naming_telegram_api_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_"))}
    environ.update(
        HOME=str(tmp_path),
        PYTHONPATH=str(ROOT),
        BOT_TOKEN="42:TEST",
        TELEGRAM_API_URL=url,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/daka.db",
        LOG_LEVEL="INFO",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()  # no "Unclosed client session" after it
    assert line.startswith(f"daka: Telegram cannot be reached at TELEGRAM_API_URL {url}: ")
    assert "Cannot connect" in line
    assert list(tmp_path.glob("daka.db*")) == []  # asked before migrating


def test_a_token_telegram_refuses_is_a_setting_error(
    telegram: FakeBotAPI,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "42:NOT-THE-TOKEN")
    code, _, err = daka(capsys, "run")
    assert code == 2
    assert err.strip() == "daka: setting BOT_TOKEN was refused by Telegram (Unauthorized)"
    assert [call.method for call in telegram.calls] == ["getMe"]
    assert list(env.glob("daka.db*")) == []


NO_CHANNEL = (
    "daka: no channel to send reminders on: set BOT_TOKEN for Telegram, the WECOM_* settings "
    "for WeCom (docs/wecom.md), or both\n"
)


def test_remind_without_a_channel_names_the_settings(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, out, err = daka(capsys, "remind", "no1")
    assert (code, out, err) == (2, "", NO_CHANNEL)
    # WeCom alone, half set: the first setting missing, not a traceback.
    monkeypatch.setenv("WECOM_CORP_ID", "ww0123456789abcdef")
    code, _, err = daka(capsys, "remind", "no1")
    assert (code, err) == (
        2,
        "daka: setting WECOM_AGENT_ID is required to send reminders on WeCom\n",
    )


def test_a_retention_dry_run_says_would_clear(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    daka(capsys, "org", "create", "no1", "--name", "No1")
    code, _, err = daka(capsys, "retention", "--dry-run")
    assert code == 0
    assert "retention no1: would clear 0 check-ins" in err and "cleared" not in err
    code, _, err = daka(capsys, "retention")
    assert code == 0 and "retention no1: cleared 0 check-ins" in err


# --------------------------------------------------------------------------- daka webhook
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("x.org/hook", "give an https URL, like https://bot.example.org"),
        ("ftp://bot.example.org/hook", "give an https URL, like https://bot.example.org"),
        ("https:///hook", "give an https URL, like https://bot.example.org"),
        ("https://bot.example.org:port/hook", "give an https URL, like https://bot.example.org"),
        ("https://bot.example.org/{name}", "its path must start with / and have no { or }"),
        ("https://bot.example.org/%7Bn%7D", "its path must start with / and have no { or }"),
    ],
)
def test_a_webhook_url_telegram_cannot_deliver_to_is_one_line_exit_2(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    problem: str,
) -> None:
    """Regression: `--url x.org/hook` made aiohttp refuse the route after the migrations, and a
    `{name}` in the path became a wildcard route."""
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    code, out, err = daka(capsys, "webhook", "--url", url)
    assert (code, out, err) == (2, "", f"daka: setting --url {url} is invalid: {problem}\n")
    assert list(env.glob("daka.db*")) == []


def test_a_webhook_token_telegram_refuses_is_one_line_before_any_migration(
    telegram: FakeBotAPI,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Like `daka run`, `daka webhook` asks Telegram who the bot is before it migrates."""
    monkeypatch.setenv("BOT_TOKEN", "42:NOT-THE-TOKEN")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    code, out, err = daka(capsys, "webhook", "--url", "https://bot.example.org/hook")
    assert (code, out) == (2, "")
    assert err.strip() == "daka: setting BOT_TOKEN was refused by Telegram (Unauthorized)"
    assert [call.method for call in telegram.calls] == ["getMe"]
    assert list(env.glob("daka.db*")) == []


def test_unreachable_telegram_stops_a_webhook_before_any_migration(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setenv("TELEGRAM_API_URL", url)
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    code, out, err = daka(capsys, "webhook", "--no-set-webhook")
    assert (code, out) == (1, "")
    [line] = err.strip().splitlines()
    assert line.startswith(f"daka: Telegram cannot be reached at TELEGRAM_API_URL {url}: ")
    assert list(env.glob("daka.db*")) == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["webhook", "--no-set-webhook", "--port", "70000"], "--port must be from 0 to 65535"),
        (["run", "--metrics-port", "0"], "--metrics-port must be from 1 to 65535"),
        (["scheduler", "--metrics-port", "99999"], "--metrics-port must be from 1 to 65535"),
    ],
)
def test_a_port_no_socket_can_have_is_one_line(
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    line: str,
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    code, out, err = daka(capsys, *args)
    assert (code, out, err) == (1, "", f"daka: {line}\n")
    assert list(env.glob("daka.db*")) == []


def test_a_webhook_path_with_braces_is_a_setting_error(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOT_TOKEN", "42:TEST")
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    monkeypatch.setenv("WEBHOOK_PATH", "/{name}")
    code, out, err = daka(capsys, "webhook", "--no-set-webhook")
    assert (code, out) == (2, "")
    assert err == (
        "daka: setting WEBHOOK_PATH is invalid: must start with /, have no { or }, "
        "and not be /healthz or /metrics\n"
    )
    assert list(env.glob("daka.db*")) == []


def test_run_with_no_channel_configured_is_one_line_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("WECOM_CORP_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = daka(capsys, "run")
    assert (code, out) == (2, "")
    assert err == (
        "daka: nothing to run: set BOT_TOKEN for Telegram, the WECOM_* settings for WeCom "
        "(docs/wecom.md), or both\n"
    )
    assert list(env.glob("daka.db*")) == []


def test_run_with_half_a_wecom_app_names_the_missing_setting(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECOM_CORP_ID", "wwdaka0000000001")
    code, _, err = daka(capsys, "run")
    assert code == 2
    assert err == "daka: setting WECOM_AGENT_ID is required to serve WeCom\n"
    assert list(env.glob("daka.db*")) == []


async def test_one_daka_run_answers_telegram_and_wecom(
    server: FakeBotAPI, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BOT_TOKEN and the WECOM_* settings both set: one `daka run` process polls Telegram and
    serves WeCom's callbacks; a member on each is answered by it."""
    from bot.cli import main
    from tests.fakewecom import LocalWeCom
    from tests.handlers.wecom.world import AES_KEY, AGENT, SECRET, TOKEN

    monkeypatch.setenv("WECOM_AGENT_ID", str(AGENT))  # the app `org set` may name
    async with LocalWeCom() as wecom, aiohttp.ClientSession() as http:
        wecom.add_app(AGENT, SECRET)
        wecom.add_members("zhangsan")
        assert await asyncio.to_thread(main, ["org", "create", "no1", "--name", "第一中学"]) == 0
        assert (
            await asyncio.to_thread(main, ["org", "set", "no1", "--wecom-agent", str(AGENT)]) == 0
        )
        port = closed_port()
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("BOT_", "TELEGRAM_", "WECOM_", "REDIS_"))
        }
        environ.update(
            PYTHONPATH=str(ROOT),
            BOT_TOKEN=server.token,
            TELEGRAM_API_URL=server.url,
            WECOM_CORP_ID=wecom.corp_id,
            WECOM_AGENT_ID=str(AGENT),
            WECOM_SECRET=SECRET,
            WECOM_TOKEN=TOKEN,
            WECOM_AES_KEY=AES_KEY,
            WECOM_API_URL=wecom.url,
            LOG_LEVEL="WARNING",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--wecom-port",
            str(port),
            cwd=env,
            env=environ,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await server.wait_for(lambda: server.polling, timeout=60, message="never polled")
            driver = CallbackDriver(
                f"http://127.0.0.1:{port}/wecom",
                token=TOKEN,
                aes_key=AES_KEY,
                corp_id=wecom.corp_id,
                agent_id=AGENT,
                session=http,
            )
            status, body, expected = await _verified(driver)
            assert (status, body) == (200, expected)

            member = server.user(4242, language_code="zh-hans")
            member.send("/start")
            assert (await member.next_reply(timeout=30)).text  # Telegram answered

            assert (await driver.send_text("zhangsan", "你好")).acknowledged
            for _ in range(300):
                if wecom.inbox("zhangsan"):
                    break
                await asyncio.sleep(0.1)
            assert "绑定" in wecom.inbox("zhangsan")[0].text  # and WeCom, by the same process
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()


async def _verified(driver: CallbackDriver) -> tuple[int, str, str]:
    """The admin saves the callback URL, once the process listens on it."""
    for _ in range(300):
        try:
            return await driver.verify_url()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("WeCom's callbacks were never served")
