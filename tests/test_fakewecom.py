"""The fake WeCom itself, spoken to in raw HTTP: it refuses what WeCom refuses, with WeCom's
errcodes, so a client that passes here does not pass by the fake's leniency; and its callback
driver opens a passive reply as WeCom would."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from domain.clock import FixedClock
from handlers.wecom.crypto import BadSignature, WeComCrypto, parse_xml
from handlers.wecom.messages import CardPressed, Selected, parse
from tests.fakewecom import CallbackDriver, LocalWeCom

AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


@pytest.fixture
async def wecom(clock: FixedClock) -> AsyncIterator[LocalWeCom]:
    async with LocalWeCom(clock=clock) as server:
        server.add_app(1000002, "secret")
        server.add_members("zhangsan")
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def get(session: aiohttp.ClientSession, url: str, **params: str) -> dict[str, Any]:
    async with session.get(url, params=params) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def post(
    session: aiohttp.ClientSession, url: str, body: object, **params: str
) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else None
    json = None if isinstance(body, bytes) else body
    async with session.post(url, params=params, data=data, json=json) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_gettoken_gives_one_token_while_it_lasts_and_refuses_strangers(
    wecom: LocalWeCom, session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    url = wecom.url + "/cgi-bin/gettoken"
    first = await get(session, url, corpid=wecom.corp_id, corpsecret="secret")
    clock.advance(timedelta(seconds=100))
    again = await get(session, url, corpid=wecom.corp_id, corpsecret="secret")

    assert first["errcode"] == 0 and first["expires_in"] == 7200
    assert (again["access_token"], again["expires_in"]) == (first["access_token"], 7100)
    assert (await get(session, url, corpid="ww-other", corpsecret="secret"))["errcode"] == 40013
    assert (await get(session, url, corpid=wecom.corp_id, corpsecret="nope"))["errcode"] == 40001

    clock.advance(timedelta(seconds=7100))
    send = wecom.url + "/cgi-bin/message/send"
    old = await post(session, send, {}, access_token=first["access_token"])
    assert old["errcode"] == 42001


async def test_message_send_checks_what_wecom_checks(
    wecom: LocalWeCom, session: aiohttp.ClientSession
) -> None:
    url = wecom.url + "/cgi-bin/gettoken"
    token = (await get(session, url, corpid=wecom.corp_id, corpsecret="secret"))["access_token"]
    send = wecom.url + "/cgi-bin/message/send"
    text = {"touser": "zhangsan", "agentid": 1000002, "msgtype": "text", "text": {"content": "a"}}

    async def errcode(body: object, **params: str) -> int:
        answer = await post(session, send, body, **({"access_token": token} | params))
        return int(answer["errcode"])

    assert await errcode(text, access_token="") == 41001
    assert await errcode(text, access_token="forged") == 40014
    assert await errcode({**text, "agentid": None}) == 41011
    assert await errcode({**text, "agentid": 1000009}) == 40056
    assert await errcode({**text, "msgtype": "sticker"}) == 40008
    assert await errcode({**text, "text": {"content": ""}}) == 44004
    assert await errcode({**text, "msgtype": "image", "image": {"media_id": "x"}}) == 40007
    assert await errcode({**text, "touser": "ghost"}) == 81013
    assert await errcode(b"{not json") == 40058
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": "t"},
        "task_id": "t",
        "button_list": [{"text": "a", "key": "k"}, {"text": "b", "key": "k"}],  # the same key
    }
    assert await errcode({**text, "msgtype": "template_card", "template_card": card}) == 40058
    assert await errcode({**text, "agentid": "1000002"}) == 0  # WeCom takes it as a string too
    assert [m.text for m in wecom.inbox("zhangsan")] == ["a"]


async def test_the_driver_tries_three_times_and_opens_a_passive_reply(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    crypto = WeComCrypto("QDG6eK", AES_KEY, "ww-corp")
    answers = [web.Response(status=502), web.Response(status=502)]

    async def callback(request: web.Request) -> web.Response:
        if answers:
            return answers.pop(0)
        reply = "<xml><MsgType><![CDATA[update_button]]></MsgType></xml>"
        return web.Response(text=crypto.seal(reply, "1700000000", "7").xml())

    app = web.Application()
    app.add_routes([web.post("/wecom", callback)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    try:
        driver = CallbackDriver(
            f"http://{host}:{port}/wecom",
            token="QDG6eK",
            aes_key=AES_KEY,
            corp_id="ww-corp",
            agent_id=1,
            session=session,
            clock=clock,
        )
        push = await driver.send_text("zhangsan", "一")
        assert push.statuses == [502, 502, 200] and push.acknowledged
        assert push.reply == "<xml><MsgType><![CDATA[update_button]]></MsgType></xml>"

        forged = WeComCrypto("another", AES_KEY, "ww-corp").seal("<xml/>", "1", "2").xml()
        answers.append(web.Response(text=forged))
        with pytest.raises(BadSignature):
            await driver.send_text("zhangsan", "二")
    finally:
        await runner.cleanup()


VOTE: dict[str, Any] = {
    "card_type": "vote_interaction",
    "main_title": {"title": "有哪些症状？"},
    "task_id": "vote-1",
    "checkbox": {
        "question_key": "q3",
        "option_list": [{"id": "fever", "text": "发热"}, {"id": "none", "text": "无"}],
        "mode": 1,
    },
    "submit_button": {"text": "提交", "key": "submit-3"},
}
MULTIPLE: dict[str, Any] = {
    "card_type": "multiple_interaction",
    "main_title": {"title": "今天在哪里？"},
    "task_id": "multi-1",
    "select_list": [
        {
            "question_key": "where",
            "title": "地点",
            "selected_id": "school",
            "option_list": [{"id": "home", "text": "家"}, {"id": "school", "text": "学校"}],
        },
        {"question_key": "how", "option_list": [{"id": "walk", "text": "步行"}]},
    ],
    "submit_button": {"key": "submit-4"},  # the text may be left out (提交)
}


def changed(card: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    """`card` with the field at `path` ("checkbox.option_list.0.id") set, or removed when
    `value` is `...`."""
    card = copy.deepcopy(card)
    *parents, last = path.split(".")
    node: Any = card
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return card


async def test_vote_and_multiple_choice_cards_are_checked_field_by_field(
    wecom: LocalWeCom, session: aiohttp.ClientSession
) -> None:
    url = wecom.url + "/cgi-bin/gettoken"
    token = (await get(session, url, corpid=wecom.corp_id, corpsecret="secret"))["access_token"]
    send = wecom.url + "/cgi-bin/message/send"

    async def errcode(card: dict[str, Any]) -> int:
        body = {
            "touser": "zhangsan",
            "agentid": 1000002,
            "msgtype": "template_card",
            "template_card": card,
        }
        return int((await post(session, send, body, access_token=token))["errcode"])

    twenty_one = [{"id": str(i), "text": str(i)} for i in range(21)]
    eleven = [{"id": str(i), "text": str(i)} for i in range(11)]
    refused = [
        changed(VOTE, "checkbox", ...),
        changed(VOTE, "checkbox.question_key", ""),
        changed(VOTE, "checkbox.question_key", "q" * 1025),
        changed(VOTE, "checkbox.option_list", []),
        changed(VOTE, "checkbox.option_list", twenty_one),
        changed(VOTE, "checkbox.option_list.1.id", "fever"),  # twice
        changed(VOTE, "checkbox.option_list.1.id", "x" * 129),
        changed(VOTE, "checkbox.option_list.1.text", ""),
        changed(VOTE, "checkbox.option_list.1.is_checked", "yes"),
        changed(VOTE, "checkbox.mode", 2),
        changed(VOTE, "checkbox.mode", True),
        changed(VOTE, "submit_button", ...),
        changed(VOTE, "submit_button.key", ""),
        changed(VOTE, "main_title", ...),
        changed(MULTIPLE, "select_list", []),
        changed(MULTIPLE, "select_list.1.question_key", "where"),  # twice
        changed(MULTIPLE, "select_list.0.option_list", eleven),
        changed(MULTIPLE, "select_list.0.option_list.0.is_checked", True),  # a vote card's
        changed(MULTIPLE, "select_list.0.title", 3),
        changed(MULTIPLE, "submit_button", ...),
    ]
    for number, card in enumerate(refused):
        assert await errcode(card) == 40058, number
    assert await errcode(VOTE) == 0
    assert await errcode(MULTIPLE) == 0
    assert (
        await errcode(changed(VOTE, "checkbox.option_list", twenty_one[:20]) | {"task_id": "v2"})
        == 0
    )


async def test_the_driver_submits_a_vote_or_multiple_choice_card_as_the_client_would(
    wecom: LocalWeCom, session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    crypto = WeComCrypto("QDG6eK", AES_KEY, wecom.corp_id)
    heard: list[CardPressed] = []

    async def callback(request: web.Request) -> web.Response:
        envelope = await request.read()
        encrypt = parse_xml(envelope).findtext("Encrypt") or ""
        event = parse(crypto.decrypt(encrypt))
        assert isinstance(event, CardPressed)
        heard.append(event)
        return web.Response(text="")

    app = web.Application()
    app.add_routes([web.post("/wecom", callback)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    url = wecom.url + "/cgi-bin/gettoken"
    token = (await get(session, url, corpid=wecom.corp_id, corpsecret="secret"))["access_token"]
    for card in (VOTE, changed(VOTE, "checkbox.mode", 0) | {"task_id": "vote-0"}, MULTIPLE):
        body = {"touser": "zhangsan", "agentid": 1000002, "msgtype": "template_card"}
        answer = await post(
            session,
            wecom.url + "/cgi-bin/message/send",
            body | {"template_card": card},
            access_token=token,
        )
        assert answer["errcode"] == 0
    try:
        driver = CallbackDriver(
            f"http://{host}:{port}/wecom",
            token="QDG6eK",
            aes_key=AES_KEY,
            corp_id=wecom.corp_id,
            agent_id=1000002,
            session=session,
            clock=clock,
            wecom=wecom,
        )
        await driver.submit("zhangsan", "vote-1", ["none", "fever"])
        await driver.submit("zhangsan", "vote-1", [])
        await driver.submit("zhangsan", "multi-1", picked={"how": "walk"})
        [both, nothing, multiple] = heard
        assert (both.event_key, both.card_type, both.task_id) == (
            "submit-3",
            "vote_interaction",
            "vote-1",
        )
        assert both.selected == (Selected("q3", ("fever", "none")),)  # as the card lists them
        assert nothing.selected == (Selected("q3", ()),)
        assert multiple.event_key == "submit-4"
        assert multiple.selected == (Selected("where", ("school",)), Selected("how", ("walk",)))
        code = both.response_code
        assert wecom.codes[code].card.task_id == "vote-1" and not wecom.codes[code].used

        with pytest.raises(ValueError, match="no option"):
            await driver.submit("zhangsan", "vote-1", ["plague"])
        with pytest.raises(ValueError, match="one option"):
            await driver.submit("zhangsan", "vote-0", ["fever", "none"])
        wecom.cards[(1000002, "vote-1")].replaced_by = "✔ 已回复"
        with pytest.raises(ValueError, match="answered"):
            await driver.submit("zhangsan", "vote-1", ["fever"])
        assert len(heard) == 3
    finally:
        await runner.cleanup()
