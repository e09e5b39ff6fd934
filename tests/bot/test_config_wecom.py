"""WeCom's settings: a bad value is one line naming the setting and exit code 2 (never the
value itself), a command that serves WeCom names the first one missing, and a complete set is
handed over typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import SettingError, Settings
from tests.bot.test_cli import daka

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"  # WeCom's published sample key


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "WECOM_AES_KEY",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2",  # 42 characters
            "expected the callback EncodingAESKey: 43 characters of A-Z, a-z and 0-9",
        ),
        (
            "WECOM_AES_KEY",
            "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2-",  # not base64
            "expected the callback EncodingAESKey: 43 characters of A-Z, a-z and 0-9",
        ),
        (
            "WECOM_TOKEN",
            "token with spaces",
            "expected the callback Token: 1-32 letters and digits",
        ),
        (
            "WECOM_AGENT_ID",
            "app",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        ("WECOM_API_URL", "qyapi.weixin.qq.com", "must start with http:// or https://"),
        (
            "WECOM_PATH",
            "wecom",
            "must start with /, have no { or }, and not be /healthz or /metrics",
        ),
        ("WECOM_PATH", "/telegram", "must differ from WEBHOOK_PATH"),
        (
            "WECOM_CORP_ID",
            "ww 123",
            "expected the corp id (企业ID) from My Company, like ww0123456789abcdef",
        ),
    ],
)
def test_a_bad_wecom_setting_is_one_line_and_exit_2(
    bare_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    value: str,
    problem: str,
) -> None:
    monkeypatch.setenv(name, value)

    code, out, err = daka(capsys, "org", "list")

    assert (code, out) == (2, "")
    assert err.splitlines() == [f"daka: setting {name} is invalid: {problem}"]
    if name in ("WECOM_AES_KEY", "WECOM_TOKEN"):
        assert value not in err  # a secret, even a wrong one
    assert list(bare_env.glob("daka.db*")) == []


def test_a_complete_wecom_app_is_handed_over_typed_and_its_secrets_stay_out_of_repr() -> None:
    settings = Settings(
        _env_file=None,
        wecom_corp_id="wx5823bf96d3bd56c7",
        wecom_agent_id="1000002",  # a string, as from the environment
        wecom_secret="app-secret",
        wecom_token=" QDG6eK ",
        wecom_aes_key=AES_KEY,
        wecom_api_url="http://127.0.0.1:9999/",
    )

    app = settings.require_wecom()

    assert (app.corp_id, app.agent_id, app.secret, app.token, app.aes_key) == (
        "wx5823bf96d3bd56c7",
        1000002,
        "app-secret",
        "QDG6eK",
        AES_KEY,
    )
    assert (app.api_url, app.path) == ("http://127.0.0.1:9999", "/wecom")
    assert "app-secret" not in repr(app) and AES_KEY not in repr(app) and "QDG6eK" not in repr(app)
    assert "app-secret" not in repr(settings)


def test_serving_wecom_names_the_first_setting_missing() -> None:
    settings = Settings(_env_file=None, wecom_corp_id="ww0123456789abcdef", wecom_secret="")

    with pytest.raises(SettingError) as caught:
        settings.require_wecom()

    assert str(caught.value) == "WECOM_AGENT_ID is required to serve WeCom"
    assert settings.wecom_secret is None  # an empty line in .env is "not set"
