"""A sender SIGKILLed in the middle of a round, with some of its sends on the wire: a live sender
takes the round over, everyone is reminded, and only the sends that were on the wire repeat.

`daka remind` runs as a real process on a SQLite file against the fake Bot API, which holds
back the answers to every send after the first `ANSWERED`: those calls are carried out (the
members have the message) but the sender never learns it, which is what a kill in the middle
of a send leaves behind. The server's log says exactly which sends were on the wire."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakebot import FakeBotAPI
from tests.scheduler.test_processes import (
    WAIT_S,
    Received,
    expire_leases,
    in_flight,
    kill,
    outbox_and_runs,
    seed,
    slot_at,
    start_daka,
    start_scheduler,
    stop,
)

pytestmark = pytest.mark.slow

MEMBERS = 70
ANSWERED = 40


async def until_outbox(
    database_url: str, predicate: Callable[[Counter[str]], bool], message: str
) -> Counter[str]:
    """The outbox's letters by status, once `predicate` holds (another process writes them)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        statuses, _ = await outbox_and_runs(database_url)
        if predicate(statuses):
            return statuses
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{message}: {dict(statuses)}")
        await asyncio.sleep(0.05)


async def test_a_sender_killed_mid_round_repeats_only_the_sends_on_the_wire(
    server: FakeBotAPI, tmp_path: Path
) -> None:
    """Regression: `daka remind` killed in the middle of a round of 70, and a live sender taking
    over, reminded 36 members twice: outcomes were written per claimed batch of 100, so every
    send of the batch so far went again."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'daka.db'}"
    slot = slot_at(0)
    ids = await seed(url, MEMBERS, [slot])
    received = Received(server)
    hold = server.hold("sendMessage", after=ANSWERED)
    remind = start_daka(["remind", "school", "--slot", slot], server, url, tmp_path, "remind")
    try:
        await server.wait_for(
            lambda: len(hold.held) == MEMBERS - ANSWERED, WAIT_S, "the other sends on the wire"
        )
        # The answered sends are recorded while the others are still waiting for theirs.
        await until_outbox(
            url,
            lambda statuses: statuses["sent"] == ANSWERED,
            "the outbox did not record the answered sends while others were on the wire",
        )
        remind.send_signal(signal.SIGKILL)
        await asyncio.to_thread(remind.wait, 10)
    finally:
        await kill(remind)
        hold.release()
    on_the_wire = {call.chat_id for call in hold.held}
    assert len(on_the_wire) == MEMBERS - ANSWERED
    claimed = await in_flight(url)
    assert claimed.keys() == on_the_wire, "a letter answered before the kill was left unsettled"

    # A live sender takes the killed one's letters over once its lease has run out (here at
    # once: the lease is made as old as it would be two minutes later).
    scheduler = start_scheduler(server, url, tmp_path, "scheduler")
    try:
        assert await expire_leases(url, set(claimed.values())) == len(claimed)
        statuses = await until_outbox(
            url, lambda statuses: statuses["sent"] == MEMBERS, "the round taken over"
        )
    except BaseException:
        await kill(scheduler)
        raise
    await stop(scheduler, tmp_path / "scheduler.log")

    received.scan()
    assert set(received.per_chat) == set(ids), "a member was not reminded"
    repeated = {chat for chat, times in received.per_chat.items() if times > 1}
    assert repeated <= on_the_wire, "a reminder whose answer had arrived went again"
    assert received.messages - MEMBERS <= len(hold.held)
    assert statuses == {"sent": MEMBERS}
    print(f"\nkill with {len(hold.held)} sends on the wire: {len(repeated)} reminders repeated")
