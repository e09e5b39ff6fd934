"""SIGKILL of `daka wecom` in the middle of a burst of check-ins: nothing acknowledged is lost,
nothing is handled twice.

`daka wecom` runs as a real process against the local WeCom (real HTTP, real encryption); it is
killed while members are half-way through their check-ins and started again on the same port.
WeCom's side posts each callback again, the same payload with the same MsgId, until a 200
comes, as WeCom does (3 tries over 15 s; here until the process is back)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bench.wecom import AES_KEY, AGENT, PATH, SECRET, TOKEN, free_port, seed, wecom_env
from bench.wecom_world import DONE_TEXTS, TimedDriver, WatchedWeCom, checkin_conversation
from bot.localwecom import Attempt
from storage.db import create_engine, create_session_factory
from storage.models import CheckIn, CheckInRevision, InboundEvent

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MEMBERS = 90
STEP_TIMEOUT = 60.0
RETRY_EVERY = 0.2  # seconds between tries while the process is down


class PatientDriver(TimedDriver):
    """WeCom's side, posting a callback again (same body) until a 200 comes."""

    async def post(self, body: bytes, query: dict[str, str]) -> Attempt:
        attempt = await super().post(body, query)
        if attempt.status != 200:
            await asyncio.sleep(RETRY_EVERY)
        return attempt


def start(env: dict[str, str], port: int, home: Path) -> subprocess.Popen[bytes]:
    with open(home / "wecom.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "wecom", "--host", "127.0.0.1", "--port", str(port)],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def serving(
    http: aiohttp.ClientSession, port: int, process: subprocess.Popen[bytes]
) -> None:
    """Until /healthz answers 200 (or the process exits: a failure)."""
    for _ in range(600):
        assert process.poll() is None, "daka wecom exited"
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("daka wecom did not serve within 60 s")


async def test_sigkill_of_daka_wecom_in_a_burst_loses_nothing_and_handles_nothing_twice(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    users = [f"kill{n:04d}" for n in range(MEMBERS)]
    await seed(url, users)
    port = free_port()
    async with WatchedWeCom() as wecom, aiohttp.ClientSession() as http:
        wecom.add_app(AGENT, SECRET)
        wecom.add_members(*users)
        env = wecom_env(wecom, {"DATABASE_URL": url})
        env["PYTHONPATH"] = str(ROOT)
        driver = PatientDriver(
            f"http://127.0.0.1:{port}{PATH}",
            token=TOKEN,
            aes_key=AES_KEY,
            corp_id=wecom.corp_id,
            agent_id=AGENT,
            session=http,
            wecom=wecom,
            tries=int(60 / RETRY_EVERY),
        )
        talk = checkin_conversation(wecom, driver)

        async def check_in(user: str) -> None:
            await talk(user, STEP_TIMEOUT)

        def done() -> int:
            return sum(wecom.text_with(user, *DONE_TEXTS)() is not None for user in users)

        process = start(env, port, tmp_path)
        try:
            await serving(http, port, process)
            conversations = [asyncio.create_task(check_in(user)) for user in users]
            for _ in range(30_000):  # at most 5 min
                if done() >= MEMBERS // 3:
                    break
                await asyncio.sleep(0.01)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            done_at_kill = {u for u in users if wecom.text_with(u, *DONE_TEXTS)() is not None}
            finished_at_kill = len(done_at_kill)
            calls_at_kill = len(wecom.calls)
            assert finished_at_kill < MEMBERS, "the burst ended before the kill: nothing tested"

            process = start(env, port, tmp_path)
            await asyncio.wait_for(asyncio.gather(*conversations), timeout=300)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log = (tmp_path / "wecom.log").read_text()
        assert process.returncode == 0, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert len(wecom.calls) > calls_at_kill  # the second process answered too
        answers = [
            sum(any(t in (d.text or "") for t in DONE_TEXTS) for d in wecom.by_user[user])
            for user in users
        ]

    engine = create_engine(url)
    async with create_session_factory(engine)() as session:
        checkins = (await session.exec(select(CheckIn))).all()
        revisions = (await session.exec(select(func.count()).select_from(CheckInRevision))).one()
        unhandled = (
            await session.exec(
                select(func.count())
                .select_from(InboundEvent)
                .where(col(InboundEvent.handled_at).is_(None))
            )
        ).one()
        journaled = (await session.exec(select(func.count()).select_from(InboundEvent))).one()
    await engine.dispose()

    assert len(checkins) == MEMBERS and revisions == MEMBERS
    assert all(c.version == 1 for c in checkins), "a confirmation was handled twice"
    assert unhandled == 0
    # every callback acknowledged was journaled once: WeCom's repeats of it were recognised
    assert journaled == len(driver.pushes)
    assert all(push.acknowledged for push in driver.pushes)
    assert all(n >= 1 for n in answers), "a member was left without an answer"
    # A reply repeats only if it was sent but not yet recorded as sent at the kill, and then
    # once: a confirmation sent after the restart is never repeated.
    repeated = [user for user, n in zip(users, answers, strict=True) if n > 1]
    print(f"kill: {finished_at_kill}/{MEMBERS} done before the kill, {len(repeated)} repeated")
    assert set(repeated) <= done_at_kill
    assert max(answers) <= 2
