"""`daka demo` as a person uses it, through the web chat's JSON API: the demo starts in-process
on free ports, a student enrols through the demo's invite link, gets a reminder, checks in with a
location and a photo, and the grade head's /summary counts the check-in."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.cli import main
from bot.demo.runner import Demo

JSON = dict[str, Any]
STUDENT, GRADE_HEAD = 1001, 2001
PNG = (  # a 1x1 PNG: the web chat sends images as photos
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
async def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Demo]:
    # settle_heap freezes the heap for a long-running process: not for the test runner's
    monkeypatch.setattr("bot.app.settle_heap", lambda: None)
    running = Demo(port=0, data=tmp_path / "demo", language="zh")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
    assert running.server.internal_errors == []


class Chat:
    """One persona's chat, as the web chat's page reads and drives it."""

    def __init__(self, http: aiohttp.ClientSession, base: str, user: int) -> None:
        self.http, self.base, self.user = http, base, user
        self.state: JSON = {"version": "", "messages": []}

    async def _post(self, action: str, body: JSON) -> None:
        async with self.http.post(f"{self.base}api/chat/{self.user}/{action}", json=body) as r:
            assert r.status == 200, await r.text()
            self.state = await r.json()

    def last_id(self) -> int:
        return max((m["id"] for m in self.state["messages"]), default=0)

    async def send(self, text: str) -> int:
        await self._post("text", {"text": text})
        return self.last_id()

    async def press(self, message: JSON, text: str) -> None:
        """Press the button whose text is ``text``, or the only one that contains it."""
        buttons = [b for row in message["inline"] for b in row]
        [button] = [b for b in buttons if b["text"] == text] or [
            b for b in buttons if text in b["text"]
        ]
        await self._post("press", {"message_id": message["id"], "data": button["callback_data"]})

    async def location(self, latitude: float, longitude: float) -> int:
        await self._post("location", {"latitude": latitude, "longitude": longitude})
        return self.last_id()

    async def photo(self, data: bytes) -> int:
        form = aiohttp.FormData()
        form.add_field("file", data, filename="thermometer.png", content_type="image/png")
        async with self.http.post(f"{self.base}api/chat/{self.user}/file", data=form) as r:
            assert r.status == 200, await r.text()
            self.state = await r.json()
        return self.last_id()

    async def reply(self, wanted: Callable[[JSON], bool], after: int, what: str) -> JSON:
        """The first bot message after message ``after`` that is ``wanted``, long-polling."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            for message in self.state["messages"]:
                if message["from"] == "bot" and message["id"] > after and wanted(message):
                    return message
            if loop.time() > deadline:
                texts = [(m["from"], m["text"][:60]) for m in self.state["messages"]]
                raise AssertionError(f"no {what} in chat {self.user}: {texts}")
            url = f"{self.base}api/chat/{self.user}"
            params = {"version": self.state["version"], "wait": "5"}
            async with self.http.get(url, params=params) as r:
                self.state = await r.json()

    async def answer(self, needle: str, after: int) -> JSON:
        return await self.reply(lambda m: needle in m["text"], after, repr(needle))


def reported(summary: JSON) -> int:
    found = re.search(r"已报 (\d+)", summary["text"])
    assert found, summary["text"]
    return int(found.group(1))


async def test_a_student_enrols_through_the_demo_invite_and_the_summary_counts_the_check_in(
    demo: Demo,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(demo.url) as page:
            assert page.status == 200 and "chat.js" in await page.text()
        async with http.get(f"{demo.url}api/demo") as r:
            world = await r.json()
        foreign = {"Origin": "http://elsewhere.example"}
        async with http.post(f"{demo.url}api/remind", headers=foreign) as r:
            assert r.status == 403  # another site open in the same browser
        async with http.get(f"{demo.url}api/demo", headers={"Host": "rebound.example"}) as r:
            assert r.status == 403  # a name rebound to 127.0.0.1
        student = next(p for p in world["personas"] if p["id"] == STUDENT)
        assert student["invite"] == demo.sample.invites["member"]
        member_id, name = student["suggestions"]

        head = Chat(http, demo.url, GRADE_HEAD)
        first = await head.answer("已报", await head.send("/summary"))
        before = reported(first)
        assert before == 2 and "异常 1" in first["text"]  # the two classmates of the warm-up

        me = Chat(http, demo.url, STUDENT)
        invited = await me.send(f"/start {student['invite']}")
        notice = await me.reply(lambda m: "inline" in m, invited, "the notice")
        await me.press(notice, "✅ 同意")
        await me.answer("学号", notice["id"])
        await me.answer("姓名", await me.send(member_id))
        welcome = await me.answer("欢迎", await me.send(name))

        async with http.post(f"{demo.url}api/remind") as r:
            line = (await r.json())["text"]
        assert "due 1, sent 1" in line, line
        await me.answer("⏰", welcome["id"])

        await me.answer("位置", await me.send("/checkin"))
        assert any(b.get("location") for row in me.state["keyboard"] for b in row)
        place = world["places"][0]
        await me.answer("体温", await me.location(place["latitude"], place["longitude"]))
        symptoms = await me.reply(lambda m: "inline" in m, await me.send("36.6"), "symptoms")
        await me.press(symptoms, "以上都没有")
        ticked = await me.reply(lambda m: m["edited"], symptoms["id"] - 1, "the tick")
        await me.press(ticked, "完成")
        exposure = await me.reply(
            lambda m: "(4/5)" in m["text"], ticked["id"] - 1, "the exposure question"
        )
        await me.press(exposure, "否")
        await me.answer("照片", exposure["id"] - 1)
        summary = await me.reply(
            lambda m: "确认提交" in str(m.get("inline")), await me.photo(PNG), "the summary"
        )
        mine = [m for m in me.state["messages"] if m["from"] == "user" and "photo" in m]
        assert mine, "the photo is in the chat"
        async with http.get(f"{demo.url}{mine[0]['photo'].lstrip('/')}") as r:
            assert await r.read() == PNG
        await me.press(summary, "确认提交")
        await me.answer("打卡成功", summary["id"] - 1)

        after = reported(await head.answer("已报", await head.send("/summary")))
        assert after == before + 1


def test_demo_on_a_port_in_use_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"daka: demo: port {port} on 127.0.0.1 is in use; choose another with --port\n"


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--data" in out and "web chat" in out


async def test_a_reused_data_folder_keeps_the_school_and_the_bot_hears_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the bot resumes after the updates it handled last time, so the second run's
    local Bot API must number its updates after them (or the bot skips them, unanswered)."""
    monkeypatch.setattr("bot.app.settle_heap", lambda: None)
    for run in (1, 2):
        demo = Demo(port=0, data=tmp_path / "demo", language="zh")
        await demo.start()
        try:
            async with aiohttp.ClientSession() as http:
                head = Chat(http, demo.url, GRADE_HEAD)
                summary = await head.answer("已报", await head.send("/summary"))
                assert reported(summary) == 2, f"run {run}: {summary['text']}"
        finally:
            await demo.stop()
        assert demo.server.internal_errors == []
    assert (tmp_path / "demo" / "daka.db").exists()
