"""An app's count per member kept in Redis (`REDIS_URL`), shared by every process sending on
the app: the callback server's replies (`daka wecom`) and the outbox's letters (`daka
scheduler`, one or more) count in one place, so a letter keeps to the room the replies left
(Doc 90454: 30 messages a minute, 1,000 an hour per app and member; WeCom drops the excess
without an error).

One sorted set per app and member (`daka:wecom:sent:{corp}:{agent}:{userid lower-cased}`) of
the times messages were sent (members unique: the time and a random suffix), trimmed to the
longest window and expiring a longest window after the last message. `room` and `count` are
each one Lua script, so a count and its trim are atomic; the arithmetic is
`domain.delivery.wait_for`'s. Times are the injected clock's seconds, passed in (not Redis
TIME), so every process must keep one clock (the system's) and tests move theirs.

A Redis out of reach raises `domain.delivery.CountUnavailable`: `WeComAPI` sends a reply all
the same (logging it once), and the outbox sender puts the letter back for a little while.
A letter's `room` and its messages' `count` are two calls: two senders checking one member in
the same millisecond may both find the last place (a message over, not a flood)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from domain.delivery import CountUnavailable

PREFIX: Final = "daka:wecom:sent:"

# KEYS[1]: the member's set; ARGV: now, messages, the oldest time kept (exclusive: now less the
# longest span, computed outside, as Lua's numbers turn to strings of 14 digits), then span,
# limit per window.
# Entries older than the longest window are trimmed first; then, per window, when the set plus
# the messages would go past its limit, the (limit - n + 1)-th newest must leave it first.
_ROOM: Final = """
local now = tonumber(ARGV[1])
local messages = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local size = redis.call('ZCARD', KEYS[1])
local wait = 0
for i = 4, #ARGV, 2 do
  local span = tonumber(ARGV[i])
  local limit = tonumber(ARGV[i + 1])
  local n = math.min(math.max(messages, 1), limit)
  if size + n > limit then
    local k = limit - n + 1
    local at = redis.call('ZRANGE', KEYS[1], -k, -k, 'WITHSCORES')
    wait = math.max(wait, tonumber(at[2]) + span - now)
  end
end
return tostring(wait)
"""

# KEYS[1]: the member's set; ARGV: now, member, the oldest time kept (as above), expiry
# seconds, then span, limit per window. Answers 1 when the message fits every window, 0 when
# it goes past one; counts it either way.
_COUNT: Final = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local size = redis.call('ZCARD', KEYS[1])
local within = 1
for i = 5, #ARGV, 2 do
  local span = tonumber(ARGV[i])
  local limit = tonumber(ARGV[i + 1])
  if size + 1 > limit then
    local at = redis.call('ZRANGE', KEYS[1], -limit, -limit, 'WITHSCORES')
    if tonumber(at[2]) + span - now > 0 then within = 0 end
  end
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return within
"""


class RedisWindows:
    """One app's count per member in Redis (`domain.delivery.Windows`). `app` names the app
    in the keys (corp id and agent id); `now` is the clock's seconds."""

    def __init__(
        self,
        redis: Redis,
        app: str,
        windows: tuple[tuple[float, int], ...],
        now: Callable[[], float],
    ) -> None:
        self.redis = redis
        self.app = app
        self.windows = windows
        self.now = now
        self._longest = max((span for span, _ in windows), default=0.0)
        self._room = redis.register_script(_ROOM)
        self._count = redis.register_script(_COUNT)

    def key(self, recipient: str) -> str:
        return f"{PREFIX}{self.app}:{recipient.lower()}"

    def _spans(self) -> list[Any]:
        return [x for span, limit in self.windows for x in (repr(span), limit)]

    async def room(self, recipient: str, messages: int = 1) -> float:
        """Seconds until `recipient` may be sent `messages` more messages within the windows;
        0 when they may be now. Raises `CountUnavailable` when Redis is out of reach."""
        if not self.windows:
            return 0.0
        now = self.now()
        args = [repr(now), max(messages, 1), repr(now - self._longest), *self._spans()]
        try:
            wait = await self._room(keys=[self.key(recipient)], args=args)
        except (RedisError, OSError) as exc:
            raise CountUnavailable(f"redis: {type(exc).__name__}") from exc
        return max(float(wait), 0.0)

    async def count(self, recipient: str) -> bool:
        """One message to `recipient` is going now; False when it goes past a window. Raises
        `CountUnavailable` when Redis is out of reach (the message is then not counted)."""
        if not self.windows:
            return True
        now = self.now()
        member = f"{now!r}:{secrets.token_hex(6)}"
        expiry = max(int(self._longest) + 1, 1)
        args = [repr(now), member, repr(now - self._longest), expiry, *self._spans()]
        try:
            within = await self._count(keys=[self.key(recipient)], args=args)
        except (RedisError, OSError) as exc:
            raise CountUnavailable(f"redis: {type(exc).__name__}") from exc
        return bool(int(within))
