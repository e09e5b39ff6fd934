"""Daka's WeCom API client against the fake WeCom over real HTTP: the token is fetched once and
kept, fetched anew when WeCom refuses it, and every answer becomes a neutral outcome."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from domain.clock import FixedClock
from domain.delivery import SENT, Refused, RetryAfter, Transient, Unreachable
from handlers.wecom.api import App, Delivery, Download, Media, WeComAPI, split_text
from handlers.wecom.cards import Button, button_card
from handlers.wecom.errors import failure_of
from tests.fakewecom import LocalWeCom
from tests.handlers.wecom.conftest import AGENT, SECRET


async def test_a_text_reaches_the_member_and_the_token_is_fetched_once(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    first = await api.send_text(["zhangsan"], "请今天 20:00 前打卡")
    second = await api.send_text(["ZhangSan"], "谢谢")

    assert first.sent and second.sent and first.msg_id != second.msg_id
    assert [m.text for m in wecom.inbox("zhangsan")] == ["请今天 20:00 前打卡", "谢谢"]
    assert wecom.gettoken_calls(AGENT) == 1 == api.token_fetches


async def test_many_sends_at_once_share_one_token_fetch(api: WeComAPI, wecom: LocalWeCom) -> None:
    results = await asyncio.gather(*(api.send_text(["lisi"], f"第{i}条") for i in range(20)))

    assert all(r.sent for r in results)
    assert wecom.gettoken_calls(AGENT) == 1


async def test_the_token_is_fetched_again_five_minutes_before_it_expires(
    api: WeComAPI, wecom: LocalWeCom, clock: FixedClock
) -> None:
    await api.send_text(["zhangsan"], "一")
    clock.advance(timedelta(seconds=7200 - 301))
    await api.send_text(["zhangsan"], "二")
    assert wecom.gettoken_calls(AGENT) == 1

    clock.advance(timedelta(seconds=2))  # 299 s left: time to refresh
    await api.send_text(["zhangsan"], "三")
    assert wecom.gettoken_calls(AGENT) == 2

    clock.advance(timedelta(seconds=300))  # the old one has expired: a new one
    assert (await api.send_text(["zhangsan"], "四")).sent
    assert wecom.gettoken_calls(AGENT) == 3
    assert [m.text for m in wecom.inbox("zhangsan")] == ["一", "二", "三", "四"]


@pytest.mark.parametrize("errcode", [42001, 40014])
async def test_a_token_wecom_revoked_early_is_fetched_anew_and_the_send_retried_once(
    api: WeComAPI, wecom: LocalWeCom, errcode: int
) -> None:
    await api.send_text(["zhangsan"], "一")
    wecom.revoke(AGENT, errcode)

    delivery = await api.send_text(["zhangsan"], "二")

    assert delivery.sent
    assert [m.text for m in wecom.inbox("zhangsan")] == ["一", "二"]
    assert wecom.gettoken_calls(AGENT) == 2
    assert [(c.path, c.errcode) for c in wecom.calls][-3:] == [
        ("/cgi-bin/message/send", errcode),
        ("/cgi-bin/gettoken", 0),
        ("/cgi-bin/message/send", 0),
    ]


async def test_a_token_refused_twice_is_a_transient_failure_not_a_loop(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    wecom.fail("/cgi-bin/message/send", errcode=42001, times=2)

    delivery = await api.send_text(["zhangsan"], "一")

    assert isinstance(delivery.outcome, Transient)
    assert "refused again" in delivery.outcome.detail
    assert wecom.inbox("zhangsan") == []
    assert wecom.gettoken_calls(AGENT) == 2


async def test_a_wrong_secret_names_the_setting_and_never_shows_it(
    wecom: LocalWeCom,
    session: aiohttp.ClientSession,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = WeComAPI(
        session, App(wecom.corp_id, AGENT, "not-the-secret"), base_url=wecom.url, clock=clock
    )
    caplog.set_level(logging.DEBUG)

    delivery = await wrong.send_text(["zhangsan"], "一")

    assert isinstance(delivery.outcome, Transient)
    assert delivery.outcome.detail.startswith("WeCom refused WECOM_SECRET (WeCom errcode 40001")
    assert "not-the-secret" not in caplog.text and "not-the-secret" not in repr(delivery)
    assert "not-the-secret" not in repr(wrong.app)
    assert wecom.inbox("zhangsan") == []


async def test_no_token_or_secret_reaches_a_log_or_an_outcome(
    api: WeComAPI, wecom: LocalWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes = [(await api.send_text(["zhangsan"], "一")).outcome]
    wecom.revoke(AGENT)
    outcomes.append((await api.send_text(["zhangsan"], "二")).outcome)
    wecom.fail("/cgi-bin/message/send", status=502)
    outcomes.append((await api.send_text(["zhangsan"], "三")).outcome)

    tokens = list(wecom.grants)
    assert len(tokens) == 2
    shown = caplog.text + repr(outcomes)
    assert SECRET not in shown and not any(token in shown for token in tokens)


async def test_members_wecom_does_not_know_are_listed_and_all_unknown_is_unreachable(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    some = await api.send_text(["zhangsan", "Ghost"], "一")
    none = await api.send_text(["ghost"], "二")

    assert some.sent and some.invalid_users == frozenset({"ghost"})
    assert isinstance(none.outcome, Unreachable)
    assert "81013" in none.outcome.detail
    assert [m.text for m in wecom.inbox("zhangsan")] == ["一"]


@pytest.mark.parametrize(("errcode", "seconds"), [(45009, 60.0), (45033, 2.0)])
async def test_wecoms_frequency_limits_ask_for_a_pause(
    api: WeComAPI, wecom: LocalWeCom, errcode: int, seconds: float
) -> None:
    wecom.fail("/cgi-bin/message/send", errcode=errcode, errmsg="api freq out of limit")

    delivery = await api.send_text(["zhangsan"], "一")

    assert delivery.outcome == RetryAfter(
        seconds, f"WeCom errcode {errcode}: api freq out of limit"
    )


async def test_more_than_30_a_minute_to_one_member_are_silently_dropped_by_wecom(
    api: WeComAPI, wecom: LocalWeCom, clock: FixedClock
) -> None:
    results = [await api.send_text(["zhangsan"], f"第{i}条") for i in range(31)]

    assert all(r.sent for r in results)  # WeCom answers ok and delivers nothing
    assert len(wecom.inbox("zhangsan")) == 30
    assert [m.text for m in wecom.dropped("zhangsan")] == ["第30条"]
    assert (await api.send_text(["lisi"], "别人不受影响")).sent
    assert len(wecom.inbox("lisi")) == 1

    clock.advance(timedelta(minutes=1))
    await api.send_text(["zhangsan"], "一分钟后")
    assert wecom.inbox("zhangsan")[-1].text == "一分钟后"


async def test_busy_broken_or_silent_wecom_is_transient(
    wecom: LocalWeCom, session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    api = WeComAPI(
        session, App(wecom.corp_id, AGENT, SECRET), base_url=wecom.url, clock=clock, timeout=0.2
    )
    wecom.fail("/cgi-bin/message/send", errcode=-1, errmsg="system busy")
    busy = await api.send_text(["zhangsan"], "一")
    wecom.fail("/cgi-bin/message/send", status=503)
    broken = await api.send_text(["zhangsan"], "二")
    wecom.fail("/cgi-bin/message/send", hold=asyncio.Event())  # never answered
    silent = await api.send_text(["zhangsan"], "三")

    assert busy.outcome == Transient("WeCom errcode -1: system busy")
    assert broken.outcome == Transient("/cgi-bin/message/send answered HTTP 503")
    assert isinstance(silent.outcome, Transient) and "Timeout" in silent.outcome.detail
    assert wecom.inbox("zhangsan") == []


async def test_wecom_out_of_reach_is_transient(session: aiohttp.ClientSession) -> None:
    with_nobody = WeComAPI(session, App("ww", 1, "s"), base_url="http://127.0.0.1:9")

    delivery = await with_nobody.send_text(["zhangsan"], "一")

    assert delivery.outcome == Transient("/cgi-bin/gettoken: ClientConnectorError")


async def test_a_long_text_goes_as_several_cut_at_lines(api: WeComAPI, wecom: LocalWeCom) -> None:
    lines = [f"{i:03d} 张三 2024{i:03d} 未打卡" for i in range(150)]

    delivery = await api.send_text(["zhangsan"], "\n".join(lines))

    parts = [m.text for m in wecom.inbox("zhangsan")]
    assert delivery.sent and len(parts) == 3  # 150 lines of 29 bytes: 70 fit in 2048
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "\n".join(parts).splitlines() == lines


async def test_the_fake_cuts_an_overlong_text_as_wecom_does_and_says_so(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    delivery = await api.send(["zhangsan"], "text", {"content": "打卡" * 1000})

    assert delivery.sent
    (message,) = wecom.inbox("zhangsan")
    assert message.truncated and len(message.text.encode()) <= 2048
    assert wecom.problems == ["a text over 2048 bytes to zhangsan was cut"]
    wecom.problems.clear()


def test_split_text_keeps_lines_whole_and_cuts_a_line_too_long_by_characters() -> None:
    assert split_text("") == []
    assert split_text("一\n二", limit=100) == ["一\n二"]
    assert split_text("一二三四五", limit=6) == ["一二", "三四", "五"]
    assert split_text("aaaa\nbbbb\ncccc", limit=10) == ["aaaa\nbbbb", "cccc"]
    assert split_text("a\n\n\nb", limit=2) == ["a", "b"]


@pytest.mark.parametrize(
    ("errcode", "expected"),
    [
        (-1, Transient("WeCom errcode -1: busy")),
        (45009, RetryAfter(60.0, "WeCom errcode 45009: busy")),
        (81013, Unreachable("WeCom errcode 81013: busy")),
        (
            60020,
            Transient(
                "this server's IP is not among the app's trusted IPs (企业可信IP) "
                "(WeCom errcode 60020: busy)"
            ),
        ),
        (40007, Refused("WeCom errcode 40007: busy")),
        (44004, Refused("WeCom errcode 44004: busy")),
    ],
)
def test_each_errcode_has_one_meaning(errcode: int, expected: object) -> None:
    assert failure_of(errcode, "busy") == expected


async def test_an_app_without_a_callback_url_cannot_send_a_button_card(
    wecom: LocalWeCom, session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    wecom.add_app(1000003, "other-secret", callback=False)
    api = WeComAPI(
        session, App(wecom.corp_id, 1000003, "other-secret"), base_url=wecom.url, clock=clock
    )
    card = button_card(task_id="t1", title="体温", buttons=[Button("正常", "a:1")])
    delivery = await api.send_card(["zhangsan"], card)

    assert isinstance(delivery.outcome, Refused)
    assert "callback URL" in delivery.outcome.detail


async def test_a_photo_a_member_sent_is_downloaded_and_a_lost_one_is_refused(
    api: WeComAPI, wecom: LocalWeCom, clock: FixedClock
) -> None:
    media_id = wecom.put_media(b"\xff\xd8\xff\xe0 a jpeg", filename="IMG_0001.jpg")

    got = await api.download(media_id)
    gone = await api.download("no-such-media")
    clock.advance(timedelta(days=3))
    expired = await api.download(media_id)

    assert got == Download(b"\xff\xd8\xff\xe0 a jpeg", "image/jpeg", "IMG_0001.jpg")
    assert gone == Refused("WeCom errcode 40007: invalid media_id")
    assert expired == Refused("WeCom errcode 40007: invalid media_id")


async def test_an_export_is_uploaded_and_sent_as_a_file_and_a_chart_as_an_image(
    api: WeComAPI, wecom: LocalWeCom
) -> None:
    sheet = await api.upload(
        "file", "打卡-2026-11-28.xlsx", b"PK\x03\x04 xlsx", "application/vnd.ms-excel"
    )
    chart = await api.upload("image", "trend.png", b"\x89PNG\r\n\x1a\n png", "image/png")
    assert isinstance(sheet, Media) and isinstance(chart, Media)

    assert (await api.send_file(["lisi"], sheet.media_id)).sent
    assert (await api.send_image(["lisi"], chart.media_id)).sent
    assert (await api.send_file(["lisi"], "not-uploaded")).outcome == Refused(
        "WeCom errcode 40007: invalid media_id"
    )

    file, image = wecom.inbox("lisi")
    assert (file.msgtype, image.msgtype) == ("file", "image")
    assert wecom.media[file.body["media_id"]].filename == "打卡-2026-11-28.xlsx"
    assert wecom.media[image.body["media_id"]].data == b"\x89PNG\r\n\x1a\n png"
    assert (await api.upload("image", "empty.png", b"", "image/png")) == Refused(
        "WeCom errcode 40006: invalid file size"
    )


async def test_markdown_goes_as_markdown(api: WeComAPI, wecom: LocalWeCom) -> None:
    assert (await api.send_markdown(["lisi"], "**今日** 已打卡 30 人")).sent

    (message,) = wecom.inbox("lisi")
    assert (message.msgtype, message.text) == ("markdown", "**今日** 已打卡 30 人")


def test_delivery_is_sent_only_for_sent() -> None:
    assert Delivery(SENT).sent and not Delivery(Refused("no")).sent


async def test_answers_are_read_as_utf8_json_and_anything_else_is_transient(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    """message/send's answer read from its bytes: UTF-8 JSON (with or without a charset, as
    WeCom's errmsg may be Chinese); an empty body, a non-object, something not JSON, a 429
    are transient; the token in the query is the one gettoken gave, each call."""
    answers: list[tuple[int, bytes, dict[str, str]]] = []
    seen: list[str] = []

    async def gettoken(request: web.Request) -> web.Response:
        return web.json_response({"errcode": 0, "access_token": "tok-1/+=", "expires_in": 7200})

    async def send(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        status, body, headers = answers.pop(0)
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.add_routes(
        [web.get("/cgi-bin/gettoken", gettoken), web.post("/cgi-bin/message/send", send)]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    api = WeComAPI(
        session, App("ww", AGENT, SECRET), base_url=f"http://{host}:{port}", clock=clock
    )
    json_type = {"Content-Type": "application/json; charset=UTF-8"}
    answers += [
        (200, b'{"errcode": 0, "msgid": "m1", "invaliduser": ""}', json_type),
        (200, '{"errcode": 81013, "errmsg": "用户不可达"}'.encode(), {}),
        (200, b"", json_type),
        (200, b"[1, 2]", json_type),
        (200, b"<html>busy</html>", {"Content-Type": "text/html"}),
        (429, b"", {"Retry-After": "7"}),
    ]
    try:
        outcomes = [(await api.send_text(["zhangsan"], str(n))) for n in range(len(answers))]
    finally:
        await runner.cleanup()

    path = "/cgi-bin/message/send"
    assert outcomes[0].sent and outcomes[0].msg_id == "m1"
    assert outcomes[1].outcome == Unreachable("WeCom errcode 81013: 用户不可达")
    assert outcomes[2].outcome == Transient(f"{path} answered JSON that is not an object")
    assert outcomes[3].outcome == Transient(f"{path} answered JSON that is not an object")
    assert outcomes[4].outcome == Transient(f"{path} answered something that is not JSON")
    assert outcomes[5].outcome == RetryAfter(7.0, "429")
    assert seen == ["access_token=tok-1/%2B%3D"] * 6
