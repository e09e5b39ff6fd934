"""Webhook delivery, as Telegram does it.

Once the bot calls ``setWebhook``, getUpdates answers 409 and every pushed update is POSTed as
JSON to the webhook, with the ``X-Telegram-Bot-Api-Secret-Token`` header when a secret was set.
A test can put a load balancer in front of several replicas::

    server.webhook_targets = [f"{replica_a}/telegram", f"{replica_b}/telegram"]
    await bot.set_webhook("https://daka.example.org/telegram", secret_token="s3cret")
    user.send("/start")
    await server.wait_webhook_idle()
    assert [d.status for d in server.webhook_deliveries] == [200]

- ``webhook_targets``: full URLs taking the deliveries in turn (round robin per attempt);
  empty means the setWebhook URL. Only loopback hosts are ever contacted: another host
  fails like an unreachable one and its updates wait, so set the targets before the
  replicas call setWebhook with their public URL (setting them retries at once).
- Up to ``max_connections`` deliveries are in flight, but one chat's updates go one at a
  time and in order: the next only after the previous was answered with a 2xx.
- An update leaves the queue only on a 2xx. Any other answer, a refused connection or a
  timeout (``webhook_timeout``) is kept in ``webhook_last_error_message`` (and in
  getWebhookInfo) and the update is retried after ``webhook_retry_delay`` seconds, doubled
  per failure up to ``webhook_retry_max_delay``. setWebhook also retries at once.
- A 2xx whose body names a ``method`` (JSON, or the form aiogram sends with
  ``handle_in_background=False``) is executed as a call of that method, recorded in
  ``calls``, before the chat's next update goes out.
- ``webhook_deliveries`` lists every attempt; ``wait_webhook_idle()`` waits until no update
  is pending or in flight. With aiogram's default ``handle_in_background=True`` a 2xx only
  means "received": wait for the bot's replies, not for idleness.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp
from yarl import URL

from .params import as_int, bad, json_bytes, read_webhook_reply
from .records import JSON, WebhookDelivery
from .state import ServerState
from .updates import update_chat_id

log = logging.getLogger("bot.localapi")

_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Lane:
    """One chat's updates waiting for the webhook: delivered one at a time, in order."""

    __slots__ = ("busy", "failures", "key", "queued", "retry", "updates")

    def __init__(self, key: int | str) -> None:
        self.key = key
        self.updates: deque[JSON] = deque()
        self.busy = False  # its first update is being delivered
        self.queued = False  # waiting in LocalBotAPI._ready_lanes for a free connection
        self.failures = 0  # consecutive failed deliveries (sets the backoff)
        self.retry: asyncio.TimerHandle | None = None


def _is_loopback(url: str) -> bool:
    host = URL(url).host
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookSender(ServerState):
    """setWebhook, deleteWebhook, getWebhookInfo and the task that delivers."""

    # ----------------------------------------------------------------- public knobs
    @property
    def webhook_targets(self) -> tuple[str, ...]:
        """Full URLs that take webhook deliveries in turn (a load balancer); () = setWebhook's."""
        return self._webhook_targets

    @webhook_targets.setter
    def webhook_targets(self, targets: Iterable[str]) -> None:
        if isinstance(targets, str):
            raise TypeError("webhook_targets takes a list of URLs, not one string")
        urls = tuple(targets)
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a webhook target must be an http(s) URL, not {url!r}")
        self._webhook_targets = urls
        self._webhook_turn = 0
        self._retry_lanes_now()

    @property
    def webhook_in_flight(self) -> int:
        """Webhook deliveries sent and not answered yet."""
        return self._in_flight

    @property
    def webhook_idle(self) -> bool:
        """No update waits for delivery and none is in flight."""
        return self.pending_updates() == 0 and self._in_flight == 0

    async def wait_webhook_idle(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Wait until every pushed update was answered 2xx by the webhook (and its reply run)."""
        try:
            await self.wait_for(lambda: self.webhook_idle, timeout)
        except AssertionError:
            raise AssertionError(
                f"webhook not idle within {timeout}s: {self._webhook_state()}"
            ) from None

    def _webhook_state(self) -> str:
        targets = ", ".join(self._webhook_targets) or "none"
        return (
            f"webhook {self.webhook_url or '(not set)'} (webhook_targets: {targets}); "
            f"updates: {self.pending_updates()} pending, {self._in_flight} in flight, "
            f"{len(self.webhook_deliveries)} attempts, "
            f"last error {self.webhook_last_error_message!r}"
        )

    # ----------------------------------------------------------------- lanes
    def _enqueue_for_webhook(self, update: JSON) -> None:
        chat_id = update_chat_id(update)
        key: int | str = f"update {update['update_id']}" if chat_id is None else chat_id
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane(key)
        lane.updates.append(update)
        self._lane_updates += 1
        self._schedule_lane(lane)

    def _schedule_lane(self, lane: Lane) -> None:
        """Queue ``lane`` for a connection if it has an update and nothing holds it back."""
        if lane.updates and not (lane.busy or lane.queued or lane.retry is not None):
            lane.queued = True
            self._ready_lanes.append(lane)
            self._webhook_wakeup.set()

    def _forget_lane_if_empty(self, lane: Lane) -> None:
        if lane.updates or lane.busy:
            return
        if lane.retry is not None:
            lane.retry.cancel()
            lane.retry = None
        if self._lanes.get(lane.key) is lane:
            del self._lanes[lane.key]

    def _take_lane_updates(self, keep: Callable[[JSON], bool]) -> list[JSON]:
        """Remove the updates ``keep`` rejects (in flight or not) from the lanes, oldest first."""
        taken: list[JSON] = []
        for lane in list(self._lanes.values()):
            kept: deque[JSON] = deque()
            for update in lane.updates:
                (kept if keep(update) else taken).append(update)
            lane.updates = kept
            self._forget_lane_if_empty(lane)
        self._lane_updates -= len(taken)
        taken.sort(key=lambda u: int(u["update_id"]))
        return taken

    def _retry_lanes_now(self) -> None:
        for lane in self._lanes.values():
            if lane.retry is not None:
                lane.retry.cancel()
                lane.retry = None
                lane.failures = 0
                self._schedule_lane(lane)

    def _retry_lane(self, lane: Lane) -> None:
        lane.retry = None
        self._schedule_lane(lane)

    def _webhook_on(self) -> None:
        while self._queue:
            self._enqueue_for_webhook(self._queue.popleft())

    def _webhook_off(self) -> None:
        """Hand every undelivered update back to getUpdates."""
        for lane in self._ready_lanes:
            lane.queued = False
        self._ready_lanes.clear()
        self._queue.extend(self._take_lane_updates(lambda update: False))

    # ----------------------------------------------------------------- the delivery task
    def _start_webhook(self) -> None:
        """Start delivering (again, after a stop: the lanes kept their updates)."""
        self._webhook_wakeup = asyncio.Event()
        for lane in self._lanes.values():
            self._schedule_lane(lane)
        self._webhook_task = asyncio.create_task(self._run_webhook(), name="localapi-webhook")
        self._webhook_task.add_done_callback(self._webhook_task_done)

    async def _run_webhook(self) -> None:
        """The server's delivery task: start deliveries while connections are free."""
        while True:
            await self._webhook_wakeup.wait()
            self._webhook_wakeup.clear()
            while (
                self._ready_lanes
                and self.webhook_url
                and self._in_flight < self.webhook_max_connections
            ):
                lane = self._ready_lanes.popleft()
                lane.queued = False
                if not lane.updates or lane.busy or lane.retry is not None:
                    continue
                lane.busy = True
                self._in_flight += 1
                task = asyncio.create_task(self._deliver(lane, lane.updates[0]))
                self._delivery_tasks.add(task)
                task.add_done_callback(self._delivery_tasks.discard)
                self._notify()  # webhook_in_flight changed

    def _webhook_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (err := task.exception()) is not None:
            self._internal_error("webhook task", err)

    async def _stop_webhook(self) -> None:
        tasks = [*self._delivery_tasks]
        if self._webhook_task is not None:
            tasks.append(self._webhook_task)
            self._webhook_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # a delivery cancelled before it ran never reached its own cleanup
        self._in_flight = 0
        for lane in list(self._lanes.values()):
            if lane.retry is not None:
                lane.retry.cancel()
                lane.retry = None
            lane.busy = lane.queued = False
            self._forget_lane_if_empty(lane)
        self._ready_lanes.clear()
        http, self._webhook_http = self._webhook_http, None
        if http is not None:
            await http.close()

    async def _deliver(self, lane: Lane, update: JSON) -> None:
        try:
            delivered = await self._post_update(update)
        except Exception as err:  # a bug in the server itself: make it loud
            self._internal_error("webhook delivery", err)
            delivered = False
        finally:
            lane.busy = False
            self._in_flight -= 1
        if delivered:
            lane.failures = 0
            if lane.updates and lane.updates[0] is update:
                lane.updates.popleft()
                self._lane_updates -= 1
        elif lane.updates:
            lane.failures += 1
            delay = min(
                self.webhook_retry_delay * 2 ** (lane.failures - 1), self.webhook_retry_max_delay
            )
            lane.retry = asyncio.get_running_loop().call_later(delay, self._retry_lane, lane)
        self._schedule_lane(lane)
        self._forget_lane_if_empty(lane)
        self._webhook_wakeup.set()
        self._notify()

    def _next_webhook_target(self) -> str:
        targets = self._webhook_targets
        if not targets:
            return self.webhook_url
        target = targets[self._webhook_turn % len(targets)]
        self._webhook_turn += 1
        return target

    def _webhook_session(self) -> aiohttp.ClientSession:
        if self._webhook_http is None or self._webhook_http.closed:
            # a fresh connection per delivery: a stopped replica never leaves a dead one behind
            connector = aiohttp.TCPConnector(force_close=True, limit=0)
            self._webhook_http = aiohttp.ClientSession(connector=connector)
        return self._webhook_http

    async def _post_update(self, update: JSON) -> bool:
        """POST ``update`` to the next target; True when it answered 2xx."""
        target = self._next_webhook_target()
        if not target:  # deleteWebhook came first; the update is back with getUpdates
            return False
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            headers[_SECRET_HEADER] = self.webhook_secret
        status: int | None = None
        error: str | None = None
        reply: JSON | None = None
        if not _is_loopback(target):
            error = (
                f"Failed to resolve host: the local Bot API delivers only to loopback hosts, "
                f"not {URL(target).host!r}; set webhook_targets"
            )
        else:
            timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
            try:
                async with self._webhook_session().post(
                    target, data=json_bytes(update), headers=headers, timeout=timeout
                ) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        reply = await read_webhook_reply(resp)
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except aiohttp.ClientConnectorError as err:
                refused = isinstance(err.os_error, ConnectionRefusedError)
                error = "Connection refused" if refused else f"Connection failed: {err}"
            except TimeoutError:
                error = "Read timeout expired"
            except aiohttp.ClientError as err:
                error = f"Connection error: {type(err).__name__}: {err}"
        self.webhook_deliveries.append(WebhookDelivery(int(update["update_id"]), target, status))
        if error is not None:
            self.webhook_last_error_date = int(self.now())
            self.webhook_last_error_message = error
            log.info("localapi: webhook delivery to %s failed: %s", target, error)
            return False
        if reply is not None:
            await self._invoke(str(reply.pop("method")), reply, self.monotonic())
        return True

    # ----------------------------------------------------------------- methods
    async def _m_set_webhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._m_delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise bad("bad webhook: an HTTP(S) URL must be provided for webhook")
        secret = params.get("secret_token")
        secret = None if secret is None or secret == "" else str(secret)
        if secret is not None and not _SECRET_TOKEN_RE.match(secret):
            raise bad("secret token contains unallowed characters")
        max_connections = max(1, min(100, as_int(params.get("max_connections"), 40)))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._set_allowed_updates(allowed)
        drop = bool(params.get("drop_pending_updates"))
        if drop:
            self._drop_pending()
        if url != self.webhook_url:
            self.webhook_last_error_date = self.webhook_last_error_message = None
        was_set = bool(self.webhook_url)
        self.webhook_url = url
        self.webhook_secret = secret
        self.webhook_max_connections = max_connections
        self.webhook_drop_pending_updates = drop
        if not was_set:
            self._webhook_on()
            self._wake_poller("conflict")
        self._retry_lanes_now()
        self._webhook_wakeup.set()
        return True

    async def _m_delete_webhook(self, params: JSON) -> bool:
        if params.get("drop_pending_updates"):
            self._drop_pending()
        if self.webhook_url:
            self._webhook_off()
        self.webhook_url = ""
        self.webhook_secret = None
        self.webhook_max_connections = 40
        self.webhook_drop_pending_updates = False
        self.webhook_last_error_date = self.webhook_last_error_message = None
        return True

    async def _m_get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": self.pending_updates(),
        }
        if self.webhook_url:
            info["max_connections"] = self.webhook_max_connections
        if self.webhook_last_error_date is not None:
            info["last_error_date"] = self.webhook_last_error_date
            info["last_error_message"] = self.webhook_last_error_message
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info
