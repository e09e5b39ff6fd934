"""`daka wecom` and the WeCom settings of `daka org set`, as an admin runs them: which app
serves which organisation, its menu installed, the callbacks served (with the scheduler), and
a bad setting said in one line with exit code 2."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.cli import main
from bot.config import Settings, load_settings
from bot.wecom import run_wecom
from domain.clock import FixedClock
from domain.schedule import ScheduleSpec
from handlers.wecom.messages import CHANNEL
from storage.db import create_engine, create_session_factory
from storage.repo import Repo
from storage.schedules import ScheduleRepo
from tests.fakewecom import CallbackDriver, LocalWeCom
from tests.handlers.wecom.world import AES_KEY, AGENT, SECRET, TOKEN


def daka(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


SECOND = 1000003
SECOND_SECRET = "daka-second-app-secret"
SECOND_TOKEN = "dakaSecondToken2026"
SECOND_AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def apps_file(folder: Path, *, agent: int = SECOND, path: str | None = None) -> Path:
    """A WECOM_APPS file naming one further app of the corp."""
    extra = f'path = "{path}"\n' if path else ""
    file = folder / "wecom-apps.toml"
    file.write_text(
        f'[[apps]]\nagent_id = {agent}\nsecret = "{SECOND_SECRET}"\n'
        f'token = "{SECOND_TOKEN}"\naes_key = "{SECOND_AES_KEY}"\n{extra}',
        encoding="utf-8",
    )
    return file


def test_each_app_serves_one_organisation(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECOM_AGENT_ID", str(AGENT))
    monkeypatch.setenv("WECOM_APPS", str(apps_file(env)))
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    daka(capsys, "org", "create", "no2", "--name", "第二中学")
    code, out, _ = daka(
        capsys, "org", "set", "no1", "--wecom-agent", "1000002", "--wecom-text-only"
    )
    assert code == 0 and out.rstrip().endswith("wecom app 1000002, text only")
    code, _, err = daka(capsys, "org", "set", "no2", "--wecom-agent", "1000002")
    assert code == 1 and err == "daka: wecom app 1000002 already serves organisation 'no1'\n"
    # A second app of the deployment (WECOM_APPS) serves a second organisation.
    code, out, _ = daka(capsys, "org", "set", "no2", "--wecom-agent", str(SECOND))
    assert code == 0 and out.rstrip().endswith(f"wecom app {SECOND}")
    # An app the deployment has no settings for: its letters would have no way out.
    code, out, err = daka(capsys, "org", "set", "no2", "--wecom-agent", "1000009")
    assert (code, out) == (2, "")
    assert err == (
        "daka: --wecom-agent 1000009: no WeCom app of this deployment has that AgentId "
        "(configured: 1000002, 1000003; set WECOM_AGENT_ID, or add the app to WECOM_APPS)\n"
    )
    code, out, _ = daka(
        capsys, "org", "set", "no1", "--no-wecom-text-only", "--wecom-userid-is-member-id"
    )
    assert out.rstrip().endswith("wecom app 1000002, user ids are member ids")
    code, _, err = daka(capsys, "org", "set", "no1", "--wecom-agent", "0")
    assert code == 1 and "--wecom-agent must be from 1" in err
    code, out, _ = daka(capsys, "org", "set", "no1", "--no-wecom-agent")
    assert out.rstrip().endswith("wecom no app, user ids are member ids")


def test_no_app_can_serve_an_organisation_of_a_deployment_without_wecom(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    code, _, err = daka(capsys, "org", "set", "no1", "--wecom-agent", str(AGENT))
    assert code == 2 and err.splitlines() == [
        f"daka: --wecom-agent {AGENT}: no WeCom app of this deployment has that AgentId "
        "(configured: none; set WECOM_AGENT_ID, or add the app to WECOM_APPS)"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            "[[apps]]\nagent_id = 1000002\nsecret = 's'\ntoken = 't'\naes_key = '{key}'\n",
            "agent_id 1000002 is named twice",
        ),
        (
            "[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 'not a token'\naes_key = '{key}'\n",
            "apps[0].token: expected the callback Token: 1-32 letters and digits",
        ),
        (
            "[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 't'\naes_key = 'short'\n",
            "apps[0].aes_key: expected the callback EncodingAESKey: 43 characters of A-Z, a-z "
            "and 0-9",
        ),
        ("[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 't'\n", "apps[0].aes_key: Field required"),
        (
            "[[apps]]\nagent_id = 7\ncorp_id = 'ww2'\nsecret = 's'\ntoken = 't'\n"
            "aes_key = '{key}'\n",
            "apps[0].corp_id: Extra inputs are not permitted",
        ),
        (
            "[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 't'\naes_key = '{key}'\n"
            "path = '/wecom'\n",
            "the path of app 7 (/wecom) is taken already",
        ),
        (
            "[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 't'\naes_key = '{key}'\n"
            "path = '/healthz'\n",
            "apps[0].path: must start with /, have no { or }, and not be /healthz or /metrics",
        ),
        (
            "[[apps]]\nagent_id = 7\nsecret = 's'\ntoken = 't'\naes_key = '{key}'\n"
            "[[apps]]\nagent_id = 8\nsecret = 's8'\ntoken = 't'\naes_key = '{key}'\n",
            "app 8 has the callback Token and EncodingAESKey of another app: "
            "give each app its own",
        ),
        ("agent_id = 7\n", "{file} must hold a list of apps ([[apps]] tables) and nothing else"),
        (
            "[[apps]\n",
            "{file} is not TOML: Expected ']]' at the end of an array declaration "
            "(at line 1, column 7)",
        ),
    ],
)
def test_a_bad_wecom_apps_file_is_one_line_and_exit_2(
    bare_env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    problem: str,
) -> None:
    file = bare_env / "apps.toml"
    file.write_text(content.replace("{key}", SECOND_AES_KEY), encoding="utf-8")
    monkeypatch.setenv("WECOM_AGENT_ID", str(AGENT))
    monkeypatch.setenv("WECOM_APPS", str(file))

    code, out, err = daka(capsys, "org", "list")

    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"daka: setting WECOM_APPS is invalid: {problem.replace('{file}', str(file))}"
    ]
    assert SECOND_AES_KEY not in err
    assert list(bare_env.glob("daka.db*")) == []


def test_wecom_apps_may_be_json_and_a_missing_file_is_said(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = env / "apps.json"
    app = {"agent_id": SECOND, "secret": "s", "token": "t", "aes_key": SECOND_AES_KEY}
    file.write_text(json.dumps({"apps": [app]}), encoding="utf-8")
    monkeypatch.setenv("WECOM_APPS", str(file))
    settings = load_settings()
    assert [a.path for a in settings.wecom_apps] == [f"/wecom/{SECOND}"]
    monkeypatch.setenv("WECOM_APPS", str(env / "nothere.toml"))
    code, _, err = daka(capsys, "org", "list")
    assert code == 2 and err == (
        f"daka: setting WECOM_APPS is invalid: cannot read {env / 'nothere.toml'}: "
        "No such file or directory\n"
    )


def test_a_bad_wecom_setting_is_one_line_and_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = daka(capsys, "wecom")
    assert (code, out) == (2, "")
    assert err == "daka: setting WECOM_CORP_ID is required to serve WeCom\n"
    monkeypatch.setenv("WECOM_AES_KEY", "too-short")
    code, _, err = daka(capsys, "wecom", "--port", "0")
    assert code == 2 and err.startswith("daka: setting WECOM_AES_KEY is invalid: expected")
    assert "too-short" not in err


def test_an_app_that_serves_no_organisation_does_not_start(
    wecom_env: LocalWeCom, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = daka(capsys, "wecom", "--port", "0")
    assert code == 2
    assert err == (
        f"daka: setting WECOM_AGENT_ID {AGENT} serves no organisation: "
        f"run daka org set SLUG --wecom-agent {AGENT}\n"
    )


def test_every_app_must_serve_an_organisation_and_the_menu_goes_to_the_orgs_app(
    wecom_env: LocalWeCom,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wecom_env.add_app(SECOND, SECOND_SECRET)
    monkeypatch.setenv("WECOM_APPS", str(apps_file(env)))
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    daka(capsys, "org", "create", "arts", "--name", "艺术学院", "--language", "en")
    daka(capsys, "org", "set", "no1", "--wecom-agent", str(AGENT))
    code, _, err = daka(capsys, "wecom", "--port", "0")
    assert code == 2 and err == (
        f"daka: setting WECOM_APPS {SECOND} serves no organisation: "
        f"run daka org set SLUG --wecom-agent {SECOND}\n"
    )
    daka(capsys, "org", "set", "arts", "--wecom-agent", str(SECOND))
    code, out, _ = daka(capsys, "wecom", "menu", "arts", "--members-only")
    assert code == 0 and out.strip() == (
        f"menu of WeCom app {SECOND} (arts) installed: Check in | Me"
    )
    assert wecom_env.apps[AGENT].menu is None and wecom_env.apps[SECOND].menu is not None


def test_the_menu_is_installed_in_the_organisations_language(
    wecom_env: LocalWeCom, capsys: pytest.CaptureFixture[str]
) -> None:
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    code, _, err = daka(capsys, "wecom", "menu", "no1")
    assert code == 1 and err == (
        "daka: no1 is not served by a WeCom app of this deployment (1000002): "
        "run daka org set no1 --wecom-agent AGENT_ID\n"
    )
    daka(capsys, "org", "set", "no1", "--wecom-agent", str(AGENT))
    code, out, _ = daka(capsys, "wecom", "menu", "no1")
    assert code == 0 and out.strip().endswith("installed: 打卡 | 我的 | 管理")
    menu = wecom_env.apps[AGENT].menu
    assert menu is not None
    assert menu[0] == {"type": "location_select", "name": "打卡", "key": "checkin"}
    assert [b["key"] for b in menu[1]["sub_button"]] == ["today", "history", "help"]
    assert [b["name"] for b in menu[2]["sub_button"]] == ["汇总", "未打卡", "异常", "趋势", "导出"]
    daka(capsys, "org", "create", "town", "--name", "Town", "--language", "en")
    daka(capsys, "org", "set", "no1", "--no-wecom-agent")
    daka(capsys, "org", "set", "town", "--wecom-agent", str(AGENT))
    code, out, _ = daka(capsys, "wecom", "menu", "town", "--members-only")
    assert code == 0 and out.strip().endswith("installed: Check in | Me")


async def test_daka_wecom_serves_the_callbacks_with_the_scheduler(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECOM_AGENT_ID", str(AGENT))
    ports: list[int] = []
    settled: list[list[int]] = []  # the ports given out when the heap was settled
    # settle_heap freezes the heap of a long-running server: not the test runner's
    monkeypatch.setattr("bot.wecom.settle_heap", lambda: settled.append(list(ports)))
    async with LocalWeCom() as wecom, aiohttp.ClientSession() as http:
        wecom.add_app(AGENT, SECRET)
        wecom.add_members("zhangsan")
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{env / 'daka.db'}",
            wecom_corp_id=wecom.corp_id,
            wecom_agent_id=AGENT,
            wecom_secret=SECRET,
            wecom_token=TOKEN,
            wecom_aes_key=AES_KEY,
            wecom_api_url=wecom.url,
            _env_file=None,
        )
        assert await asyncio.to_thread(main, ["org", "create", "no1", "--name", "第一中学"]) == 0
        assert (
            await asyncio.to_thread(main, ["org", "set", "no1", "--wecom-agent", str(AGENT)]) == 0
        )
        ready = asyncio.Event()

        def serving(port: int) -> None:
            ports.append(port)
            ready.set()

        stop = asyncio.Event()
        running = asyncio.create_task(
            run_wecom(
                settings, host="127.0.0.1", port=0, with_scheduler=True, ready=serving, stop=stop
            )
        )
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
        assert ports, running
        # start-up's objects are out of the collector's sight before the first callback: no
        # full collection walks them again (0.1 s pauses of the acknowledgements at 400
        # members at once)
        assert settled == [[]]
        driver = CallbackDriver(
            f"http://127.0.0.1:{ports[0]}/wecom",
            token=TOKEN,
            aes_key=AES_KEY,
            corp_id=wecom.corp_id,
            agent_id=AGENT,
            session=http,
        )
        status, body, expected = await driver.verify_url()  # the admin saves the URL
        assert (status, body) == (200, expected)
        assert (await driver.send_text("zhangsan", "你好")).acknowledged
        async with http.get(f"http://127.0.0.1:{ports[0]}/healthz") as health:
            assert health.status == 200
        stop.set()
        await asyncio.wait_for(running, timeout=30)  # stopping sends what was taken
        assert "绑定" in wecom.inbox("zhangsan")[0].text


def test_a_wecom_only_deployment_makes_invites_members_send_as_text(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOT_USERNAME")
    monkeypatch.setenv("WECOM_AGENT_ID", str(AGENT))
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    code, out, err = daka(capsys, "invite", "no1")
    assert (code, err) == (0, "")
    invite = out.splitlines()[1].removeprefix("code: ")
    assert out.splitlines()[-1] == f"WeCom: send 绑定 {invite} to the app"
    assert "t.me" not in out


async def test_a_sender_elsewhere_gets_a_wecom_courier_only_with_every_wecom_setting(
    env: Path,
) -> None:
    from bot.wecom import wecom_courier
    from handlers.wecom.courier import WeComCourier
    from storage.db import create_engine, create_session_factory

    engine = create_engine(f"sqlite+aiosqlite:///{env / 'daka.db'}")
    sessions = create_session_factory(engine)
    complete = Settings(
        wecom_corp_id="wwdaka0000000001",
        wecom_agent_id=AGENT,
        wecom_secret=SECRET,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        _env_file=None,
    )
    async with aiohttp.ClientSession() as http:
        assert isinstance(wecom_courier(complete, sessions, http), WeComCourier)
        telegram_only = Settings(_env_file=None)
        assert wecom_courier(telegram_only, sessions, http) is None
        half = Settings(wecom_corp_id="wwdaka0000000001", wecom_agent_id=AGENT, _env_file=None)
        assert wecom_courier(half, sessions, http) is None
    await engine.dispose()


async def wecom_member_reminded_at(url: str, userid: str, now: datetime) -> None:
    """Roster entry 1001 of no1 bound to WeCom member `userid`; no1 reminds at `now`'s minute
    (Shanghai) and reports only at the end of the day."""
    engine = create_engine(url)
    try:
        async with create_session_factory(engine)() as session:
            repo = Repo(session)
            org = await repo.orgs.require(slug="no1")
            member = await repo.members.by_external(org_id=org.id or 0, external_id="1001")
            assert member is not None
            account = await repo.accounts.ensure(channel=CHANNEL, external_id=userid, now=now)
            await repo.members.bind(member=member, account_id=account.id or 0, now=now)
            remind = f"{now.astimezone(ZoneInfo('Asia/Shanghai')):%H:%M}"
            spec = ScheduleSpec.parse(remind=remind, cutoff="23:59", report="23:59", days="all")
            await ScheduleRepo(session).put(org_id=org.id or 0, unit_id=None, spec=spec)
            await session.commit()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("callback", ["set", "unset"])
def test_daka_scheduler_reminds_on_wecom_without_a_bot_token(
    wecom_env: LocalWeCom,
    env: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    callback: str,
) -> None:
    """A WeCom-only deployment (no BOT_TOKEN): `daka scheduler` runs the round, and its
    reminder reaches the member through the app (the local WeCom at WECOM_API_URL); it needs
    the corp, the AgentId and the Secret, not the callback's Token and EncodingAESKey, which
    only `daka wecom` uses (a scheduler on a host of its own may not have them)."""
    if callback == "unset":
        monkeypatch.delenv("WECOM_TOKEN")
        monkeypatch.delenv("WECOM_AES_KEY")
    wecom_env.add_members("zhangsan")
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    daka(capsys, "org", "set", "no1", "--wecom-agent", str(AGENT))
    (env / "roster.csv").write_text("unit,member_id,name\n一班,1001,张三\n", encoding="utf-8")
    assert daka(capsys, "roster", "import", "no1", "roster.csv")[0] == 0
    clock = FixedClock(datetime.now(UTC).replace(second=0, microsecond=0))
    asyncio.run(wecom_member_reminded_at(os.environ["DATABASE_URL"], "zhangsan", clock.now()))

    done = threading.Event()

    def stop_once_reminded() -> None:
        deadline = time.monotonic() + 60
        while not wecom_env.inbox("zhangsan") and time.monotonic() < deadline:
            time.sleep(0.05)  # the watcher's poll, off the scheduler's loop
        if not done.is_set():
            os.kill(os.getpid(), signal.SIGTERM)  # as docker stop does

    watcher = threading.Thread(target=stop_once_reminded, daemon=True)
    watcher.start()
    try:
        code, _, err = daka(capsys, "scheduler")
    finally:
        done.set()
    watcher.join(timeout=10)
    assert code == 0 and "Traceback" not in err and "ERROR" not in err, err
    assert "remind@" in err and ": 1 letters" in err  # the round's line
    [reminder] = wecom_env.inbox("zhangsan")
    assert "张三" in reminder.text and "还没有打卡" in reminder.text, reminder.text


def test_daka_scheduler_needs_a_channel_and_a_whole_wecom_app(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert daka(capsys, "scheduler") == (
        2,
        "",
        "daka: nothing to send on: set BOT_TOKEN for Telegram, the WECOM_* settings for "
        "WeCom (docs/wecom.md), or both\n",
    )
    monkeypatch.setenv("WECOM_CORP_ID", "wwdaka0000000001")
    code, _, err = daka(capsys, "scheduler")
    assert (code, err) == (2, "daka: setting WECOM_AGENT_ID is required to send on WeCom\n")


@pytest.mark.parametrize("command", [["scheduler"], ["remind", "no1"]])
def test_a_wecom_sender_without_the_secret_names_it(
    wecom_env: LocalWeCom,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    """What sending needs is said, one line, exit 2, before anything is sent: the Secret
    (the Token and EncodingAESKey it does not need are not asked for)."""
    daka(capsys, "org", "create", "no1", "--name", "第一中学")
    for name in ("WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY"):
        monkeypatch.delenv(name)
    code, out, err = daka(capsys, *command)
    purpose = "to send on WeCom" if command == ["scheduler"] else "to send reminders on WeCom"
    assert (code, out, err) == (2, "", f"daka: setting WECOM_SECRET is required {purpose}\n")
    assert wecom_env.inbox("zhangsan") == []


@pytest.mark.parametrize("command", [["wecom"], ["run"]])
@pytest.mark.parametrize("missing", ["WECOM_TOKEN", "WECOM_AES_KEY"])
def test_the_wecom_server_still_needs_the_callback_settings(
    wecom_env: LocalWeCom,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    missing: str,
) -> None:
    """`daka wecom` and `daka run` take WeCom's callbacks: without the Token or the
    EncodingAESKey they could verify and read none, so they say which is missing, exit 2."""
    monkeypatch.delenv(missing)
    code, out, err = daka(capsys, *command)
    assert (code, out, err) == (2, "", f"daka: setting {missing} is required to serve WeCom\n")


async def test_with_redis_url_the_callback_server_and_the_sender_keep_one_count(
    env: Path, redis_url: str
) -> None:
    """`daka wecom` (the channels' API clients) and `daka scheduler` (the deployment's
    couriers) each build their clients on the Redis of `REDIS_URL`: a reply counted by one is
    in the count the other's letters keep to. Without it each keeps its own."""
    import contextlib

    from redis.asyncio import Redis

    from bot.app import deployment_couriers
    from bot.wecom import build_channels, shared_counts
    from domain.clock import SystemClock
    from domain.delivery import RecipientWindows
    from handlers.wecom.courier import WeComCourier
    from handlers.wecom.windows import RedisWindows

    engine = create_engine(f"sqlite+aiosqlite:///{env / 'daka.db'}")
    sessions = create_session_factory(engine)
    clock = SystemClock()  # the sender's: the processes count in one clock's seconds
    wecom = dict(
        wecom_corp_id="wwdaka0000000001",
        wecom_agent_id=AGENT,
        wecom_secret=SECRET,
        wecom_token=TOKEN,
        wecom_aes_key=AES_KEY,
        _env_file=None,
    )
    shared = Settings(redis_url=redis_url, **wecom)  # type: ignore[arg-type]
    async with aiohttp.ClientSession() as http, contextlib.AsyncExitStack() as closing:
        redis = shared_counts(shared, closing)
        assert redis is not None
        [channel] = build_channels(shared, sessions, clock, http, redis=redis)
        assert isinstance(channel.api.recipients, RedisWindows)
        for _ in range(30):
            await channel.api.recipients.count("ZhangSan")
        async with deployment_couriers(None, shared, sessions) as couriers:
            courier = couriers[CHANNEL]
            assert isinstance(courier, WeComCourier)
            assert isinstance(courier.recipients, RedisWindows)
            assert await courier.recipients.room("zhangsan") > 0  # the replies' minute is full
        async with deployment_couriers(None, Settings(**wecom), sessions) as couriers:  # type: ignore[arg-type]
            alone = couriers[CHANNEL]
            assert isinstance(alone, WeComCourier)
            assert isinstance(alone.recipients, RecipientWindows)
    assert shared_counts(Settings(**wecom), contextlib.AsyncExitStack()) is None  # type: ignore[arg-type]
    probe = Redis.from_url(redis_url)
    assert await probe.keys("daka:wecom:sent:*") == [
        b"daka:wecom:sent:wwdaka0000000001:%d:zhangsan" % AGENT
    ]
    await probe.aclose()
    await engine.dispose()
