"""What a bot process loads: the Redis client only where REDIS_URL asks for it (the bot's memory
is a benchmark goal, bench.managers: ≤ 150 MiB with 100,000 members)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import bot.app, bot.cli.run, bot.wecom, handlers.wecom.api
print("redis" in sys.modules)
from handlers.wecom.api import App, WeComAPI
import aiohttp, asyncio
from redis.asyncio import Redis

async def main():
    async with aiohttp.ClientSession() as http:
        plain = WeComAPI(http, App("corp", 1, "s"))
        shared = WeComAPI(http, App("corp", 1, "s"), redis=Redis())
        print(type(plain.recipients).__name__, type(shared.recipients).__name__)

asyncio.run(main())
"""


@pytest.mark.slow
def test_the_redis_client_is_loaded_only_for_a_shared_count() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "RecipientWindows", "RedisWindows"]
