"""The app's callback URL, driven as WeCom drives it (tests/fakewecom's CallbackDriver, real
encryption over real HTTP): verification, every event Daka reads, acknowledgement before the
work, WeCom's retries handled once, and refusals that handle nothing and log one line."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from domain.clock import FixedClock
from domain.conversation import io
from handlers.wecom.crypto import WeComCrypto, signature
from handlers.wecom.messages import (
    CardPressed,
    EnterAgent,
    Event,
    ImageMessage,
    LocationMessage,
    LocationPicked,
    LocationReport,
    MenuClick,
    TextMessage,
    to_input,
)
from handlers.wecom.server import CallbackEndpoint
from tests.fakewecom import CallbackDriver, LocalWeCom

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
AGENT = 1000002


@dataclass
class Callback:
    """The endpoint under test, what its handler got, and WeCom playing against it."""

    endpoint: CallbackEndpoint
    driver: CallbackDriver
    handled: list[Event] = field(default_factory=list)
    behaviour: list[Callable[[Event], Awaitable[object]]] = field(default_factory=list)

    async def handle(self, event: Event) -> None:
        if self.behaviour:
            await self.behaviour.pop(0)(event)
        self.handled.append(event)


@contextlib.asynccontextmanager
async def serve(
    session: aiohttp.ClientSession,
    clock: FixedClock,
    *,
    before_ack: bool = False,
    patience: float = 5.0,
    corp_id: str = CORP_ID,
    wecom: LocalWeCom | None = None,
    kind: type[CallbackEndpoint] = CallbackEndpoint,
    endpoint_clock: FixedClock | None = None,
) -> AsyncIterator[Callback]:
    holder: list[Callback] = []

    async def handle(event: Event) -> None:
        await holder[0].handle(event)

    endpoint = kind(
        WeComCrypto(TOKEN, AES_KEY, CORP_ID), handle, before_ack=before_ack, clock=endpoint_clock
    )
    app = web.Application()
    app.add_routes(endpoint.routes("/wecom"))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    driver = CallbackDriver(
        f"http://{host}:{port}/wecom",
        token=TOKEN,
        aes_key=AES_KEY,
        corp_id=corp_id,
        agent_id=AGENT,
        session=session,
        clock=clock,
        timeout=patience,
        wecom=wecom,
    )
    holder.append(Callback(endpoint, driver))
    try:
        yield holder[0]
    finally:
        await endpoint.drain()
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def callback(session: aiohttp.ClientSession, clock: FixedClock) -> AsyncIterator[Callback]:
    async with serve(session, clock) as served:
        yield served


async def test_saving_the_url_in_the_admin_console_verifies(callback: Callback) -> None:
    status, body, expected = await callback.driver.verify_url()

    assert (status, body) == (200, expected)


async def test_wecoms_published_verification_request_is_answered_even_unescaped(
    callback: Callback, session: aiohttp.ClientSession
) -> None:
    query = (
        "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589"
        "&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3"
        "zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
    )
    for sent in (query, query.replace("%2B", "+")):  # "+" not escaped arrives as a space
        async with session.get(f"{callback.driver.url}?{sent}") as response:
            assert (response.status, await response.text()) == (200, "1616140317555161061")
            assert response.content_type == "text/plain"


async def test_every_event_daka_reads_is_acknowledged_empty_and_handed_over_typed(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    async with LocalWeCom(corp_id=CORP_ID, clock=clock) as wecom:
        wecom.add_app(AGENT, "s")
        wecom.add_members("zhangsan")
        from handlers.wecom.api import App, WeComAPI
        from handlers.wecom.cards import Button, button_card

        api = WeComAPI(session, App(CORP_ID, AGENT, "s"), base_url=wecom.url, clock=clock)
        card = button_card(task_id="q1", title="体温", buttons=[Button("正常", "ans:1")])
        assert (await api.send_card(["zhangsan"], card)).sent
        async with serve(session, clock, wecom=wecom) as callback:
            driver = callback.driver
            photo = wecom.put_media(b"\xff\xd8 photo")
            pushes = [
                await driver.send_text("zhangsan", "/checkin"),
                await driver.send_text("zhangsan", "36.6"),
                await driver.send_image("zhangsan", photo),
                await driver.send_location("zhangsan", 31.2304, 121.4737, "上海市人民广场"),
                await driver.report_location("zhangsan", 31.2304, 121.4737, 25.0),
                await driver.pick_location("zhangsan", 31.2, 121.4, "第一中学", key="checkin"),
                await driver.click("zhangsan", "today"),
                await driver.enter("zhangsan"),
                await driver.press("zhangsan", "q1", "ans:1"),
            ]
            await callback.endpoint.drain()

            assert [p.statuses for p in pushes] == [[200]] * 9
            assert all(p.attempts[0].body == b"" and p.reply is None for p in pushes)
            kinds = [type(e) for e in callback.handled]
            assert kinds == [
                TextMessage,
                TextMessage,
                ImageMessage,
                LocationMessage,
                LocationReport,
                LocationPicked,
                MenuClick,
                EnterAgent,
                CardPressed,
            ]
            assert [to_input(e) for e in callback.handled] == [
                io.Command("checkin"),
                io.Text("36.6"),
                io.Photo(photo),
                io.Location(31.2304, 121.4737, label="上海市人民广场"),
                io.Location(31.2304, 121.4737, accuracy=25.0, live=True),
                io.Location(31.2, 121.4, label="第一中学"),
                io.Command("today"),
                None,
                io.Press("ans:1"),
            ]
            pressed = callback.handled[-1]
            assert isinstance(pressed, CardPressed)
            updated = await api.update_card(
                ["zhangsan"], pressed.response_code, replace_name="已选"
            )
            assert updated.sent  # the click's own code updates the card
            assert all(e.user == "zhangsan" and e.agent_id == AGENT for e in callback.handled)


async def test_the_ack_goes_before_the_work_is_done(callback: Callback) -> None:
    release = asyncio.Event()
    callback.behaviour.append(lambda _event: release.wait())

    push = await callback.driver.send_text("zhangsan", "慢慢来")

    assert push.statuses == [200] and callback.handled == []
    release.set()
    await callback.endpoint.drain()
    assert [e.content for e in callback.handled if isinstance(e, TextMessage)] == ["慢慢来"]


async def test_a_retried_message_is_handled_once(callback: Callback) -> None:
    first = await callback.driver.send_text("zhangsan", "一")
    again = await callback.driver.push(first.xml)  # WeCom's retry: same MsgId
    await callback.endpoint.drain()

    assert first.statuses == again.statuses == [200]
    assert len(callback.handled) == 1 and callback.endpoint.duplicates == 1


class Watched(CallbackEndpoint):
    """The endpoint, telling the test when a retry waits for its first try."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_waits = asyncio.Event()

    async def _await_first(self, first: asyncio.Future[bool]) -> bool:
        self.retry_waits.set()
        return await super()._await_first(first)


async def test_no_answer_within_the_timeout_makes_wecom_try_again_and_the_retry_waits(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    async with serve(session, clock, before_ack=True, patience=1.0, kind=Watched) as callback:
        endpoint = callback.endpoint
        assert isinstance(endpoint, Watched)
        # The journal is slow: it finishes only once WeCom has given up on the first try.
        callback.behaviour.append(lambda _event: endpoint.retry_waits.wait())

        push = await callback.driver.send_text("zhangsan", "一")

        assert push.statuses == [None, 200] and "Timeout" in push.attempts[0].error
        assert len(callback.handled) == 1 and endpoint.duplicates == 1


async def test_a_retry_waiting_for_a_failed_first_try_answers_500_and_the_next_is_taken(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    async with serve(session, clock, before_ack=True, patience=1.0, kind=Watched) as callback:
        endpoint = callback.endpoint
        assert isinstance(endpoint, Watched)

        async def slow_then_broken(_event: Event) -> None:
            await endpoint.retry_waits.wait()
            raise RuntimeError("database is locked")

        callback.behaviour.append(slow_then_broken)

        push = await callback.driver.send_text("zhangsan", "一")

        assert push.statuses == [None, 500, 200]
        assert [e.content for e in callback.handled if isinstance(e, TextMessage)] == ["一"]


async def test_a_failed_journal_answers_500_so_wecom_tries_again_and_it_is_handled(
    session: aiohttp.ClientSession, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(session, clock, before_ack=True) as callback:

        async def broken(_event: Event) -> None:
            raise RuntimeError("database is locked")

        callback.behaviour.append(broken)
        push = await callback.driver.send_text("zhangsan", "一")

        assert push.statuses == [500, 200]
        assert [e.content for e in callback.handled if isinstance(e, TextMessage)] == ["一"]
        assert "the handler failed before the ack" in caplog.text


async def test_a_handlers_bug_is_logged_and_wecom_still_gets_its_200(
    callback: Callback, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(_event: Event) -> None:
        raise RuntimeError("a bug")

    callback.behaviour.append(broken)
    push = await callback.driver.send_text("zhangsan", "一")
    await callback.endpoint.drain()

    assert push.statuses == [200]
    (record,) = [r for r in caplog.records if r.name == "handlers.wecom.server"]
    assert record.exc_info is not None and "the handler failed" in record.getMessage()


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "handlers.wecom.server"]


async def test_a_wrong_signature_is_403_handles_nothing_and_logs_one_line(
    callback: Callback, caplog: pytest.LogCaptureFixture
) -> None:
    sealed = callback.driver.crypto.seal("<xml/>", "1700000000", "1")
    body = f"<xml><Encrypt><![CDATA[{sealed.encrypt}]]></Encrypt></xml>".encode()
    query = {"msg_signature": "0" * 40, "timestamp": "1700000000", "nonce": "1"}

    attempt = await callback.driver.post(body, query)

    assert attempt.status == 403 and attempt.body == b""
    assert callback.handled == []
    (line,) = refusals(caplog)
    assert "refused (403): BadSignature" in line and AES_KEY not in line and TOKEN not in line


async def test_a_callback_for_another_corp_is_403(
    session: aiohttp.ClientSession, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(session, clock, corp_id="ww-another-corp") as callback:
        push = await callback.driver.send_text("zhangsan", "一")

        assert push.statuses == [403, 403, 403]  # WeCom's three tries, all refused
        assert callback.handled == []
        assert len(refusals(caplog)) == 3 and "BadCorpId" in refusals(caplog)[0]


@pytest.mark.parametrize(
    ("encrypt", "status", "problem"),
    [
        ("not base64!", 400, "BadPayload: the ciphertext is not base64"),
        ("QUJD", 400, "BadPayload: a ciphertext of 3 bytes is not whole 32-byte blocks"),
    ],
)
async def test_a_malformed_ciphertext_is_400(
    callback: Callback, caplog: pytest.LogCaptureFixture, encrypt: str, status: int, problem: str
) -> None:
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    query = {"msg_signature": signature(TOKEN, "1", "2", encrypt), "timestamp": "1", "nonce": "2"}

    attempt = await callback.driver.post(body, query)

    assert attempt.status == status and callback.handled == []
    (line,) = refusals(caplog)
    assert line.endswith(problem)


@pytest.mark.parametrize(
    ("body", "query", "status"),
    [
        (b"<xml><Encrypt>", {"msg_signature": "a", "timestamp": "1", "nonce": "2"}, 400),
        (b"<xml><Encrypt>x</Encrypt></xml>", {"timestamp": "1", "nonce": "2"}, 403),
        (b"<xml/>", {"msg_signature": "a", "timestamp": "1", "nonce": "2"}, 400),
        (b"x" * (65 * 1024), {"msg_signature": "a", "timestamp": "1", "nonce": "2"}, 413),
    ],
)
async def test_malformed_posts_are_refused_with_one_line(
    callback: Callback,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    query: dict[str, str],
    status: int,
) -> None:
    attempt = await callback.driver.post(body, query)

    assert attempt.status == status and callback.handled == []
    assert len(refusals(caplog)) == 1


async def test_a_decrypted_callback_missing_its_sender_is_400(
    callback: Callback, caplog: pytest.LogCaptureFixture
) -> None:
    push = await callback.driver.push("<xml><MsgType>text</MsgType><MsgId>1</MsgId></xml>")

    assert push.statuses == [400, 400, 400] and callback.handled == []
    assert "BadMessage: no FromUserName" in refusals(caplog)[0]


async def test_a_get_with_a_wrong_signature_is_403(
    callback: Callback, session: aiohttp.ClientSession
) -> None:
    query = {"msg_signature": "0" * 40, "timestamp": "1", "nonce": "2", "echostr": "QUJD"}
    async with session.get(callback.driver.url, params=query) as response:
        assert (response.status, await response.text()) == (403, "")


async def test_a_callback_signed_long_ago_is_refused_as_a_replay(
    session: aiohttp.ClientSession, clock: FixedClock
) -> None:
    """A callback signed 10 minutes before the endpoint's now is refused (403) and not
    handled; one signed a minute ago is taken."""
    server_clock = FixedClock(clock.now() + timedelta(minutes=10))
    async with serve(session, clock, endpoint_clock=server_clock) as served:
        late = await served.driver.send_text("zhangsan", "旧的")
        assert late.statuses[0] == 403
        server_clock.advance(timedelta(minutes=-9))
        fresh = await served.driver.send_text("zhangsan", "新的")
        assert fresh.statuses == [200]
        await served.endpoint.drain()
    assert [e.content for e in served.handled if isinstance(e, TextMessage)] == ["新的"]


async def test_a_body_sent_in_pieces_is_read_whole_and_a_long_one_is_413(
    callback: Callback, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Chunked, without a Content-Length: read piece by piece until its end, and refused
    as soon as it passes 64 KB."""
    xml = (
        "<xml><ToUserName>wx</ToUserName><FromUserName>Zhang</FromUserName>"
        "<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content>"
        "<MsgId>7</MsgId><AgentID>1000002</AgentID></xml>"
    )
    sealed = callback.driver.crypto.seal(xml, "1", "2")
    query = {"msg_signature": sealed.signature, "timestamp": "1", "nonce": "2"}

    async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]
            await asyncio.sleep(0.01)

    envelope = sealed.xml().encode()
    async with session.post(callback.driver.url, params=query, data=pieces(envelope, 40)) as got:
        assert got.status == 200
    long = b"<xml>" + b" " * (80 * 1024)
    async with session.post(callback.driver.url, params=query, data=pieces(long, 16_000)) as got:
        assert got.status == 413

    await callback.endpoint.drain()
    assert [type(event) for event in callback.handled] == [TextMessage]
    assert len(refusals(caplog)) == 1
