"""The WeCom server API of one self-built app, over aiohttp: what Daka sends and fetches.

- `gettoken` is cached per app (one client per app, shared by whoever sends for it): one fetch
  at a time under a lock, refreshed 5 minutes before it expires, and fetched again (once, then
  the call is retried once) when WeCom says it is invalid or expired (40014, 42001): WeCom may
  invalidate a token early (Doc 91039).
- `message/send` (text, markdown, image, file, template cards), `message/update_template_card`,
  `media/upload`, `media/get`, `menu/create`.
- Every message/send to a member is counted in the app's `recipients` windows (Doc 90454: an
  app may send one member 30 messages a minute and 1,000 an hour; WeCom drops the excess
  without an error). Replies and the outbox's letters share the count: the outbox sender keeps
  letters within it, and a reply past it is sent all the same (it answers the member; the
  letters wait) and logged. A try is counted when it is made, so a failed try counts too: the
  count errs on the side of letters waiting, never of WeCom dropping one. Given a Redis
  (`REDIS_URL`), the count is kept there (`handlers.wecom.windows`), shared by every process
  sending on the app; otherwise it is this process's. A Redis out of reach does not stop a
  message (a reply answers the member; the outbox sender has already found the letter room):
  it goes uncounted, and that is logged once until Redis answers again; for 5 seconds after a
  failure messages go uncounted without asking Redis, so replies do not each wait its timeout.
- What WeCom answers is told in the neutral outcomes of `domain.delivery`
  (`handlers.wecom.errors`); this client never raises for an answer, a timeout or a network
  error.

Neither the secret nor a token is ever logged or put in an outcome's detail: both travel in
query strings, so no URL is either."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

import aiohttp
from yarl import URL

from domain.clock import Clock, SystemClock
from domain.delivery import (
    SENT,
    CountUnavailable,
    Failure,
    Outcome,
    RecipientWindows,
    Refused,
    RetryAfter,
    Sent,
    Transient,
    Unreachable,
    Windows,
)
from handlers.wecom.errors import TOKEN_REFUSED, failure_of

if TYPE_CHECKING:  # redis is imported only where REDIS_URL is set (the bot's memory)
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

DEFAULT_API_URL: Final = "https://qyapi.weixin.qq.com"
PER_MEMBER_PER_MINUTE: Final = 30  # messages an app may send one member (Doc 90454)
PER_MEMBER_PER_HOUR: Final = 1000
TEXT_LIMIT: Final = 2048  # bytes of text/markdown content; WeCom cuts longer ones (Doc 90236)
REFRESH_EARLY: Final = timedelta(minutes=5)
COUNT_AGAIN_AFTER: Final = 5.0  # seconds messages go uncounted once the shared count failed

MediaKind = Literal["image", "voice", "video", "file"]
BINARY: Final = frozenset({"/cgi-bin/media/get"})  # answers a file, or JSON for an error


@dataclass(frozen=True, slots=True)
class App:
    """A self-built app's credentials: what gettoken needs, and whom message/send is from."""

    corp_id: str
    agent_id: int
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What message/send or update_template_card answered: the outcome, the message id, the
    card's response_code (interactive cards), and the recipients WeCom would not reach."""

    outcome: Outcome
    msg_id: str = ""
    response_code: str = ""
    invalid_users: frozenset[str] = frozenset()
    unlicensed_users: frozenset[str] = frozenset()

    @property
    def sent(self) -> bool:
        return isinstance(self.outcome, Sent)


@dataclass(frozen=True, slots=True)
class Media:
    """An uploaded temporary media file (valid 3 days)."""

    media_id: str
    kind: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Download:
    """A media file fetched with media/get."""

    data: bytes
    content_type: str
    filename: str


@dataclass(slots=True)
class _Token:
    value: str
    refresh_at: datetime


class WeComAPI:
    """One app's API client. Build one per app and share it: it holds the app's token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        app: App,
        *,
        base_url: str = DEFAULT_API_URL,
        clock: Clock | None = None,
        timeout: float = 10.0,
        redis: Redis | None = None,
    ) -> None:
        """`redis`: where the app's count per member is kept, shared with other processes
        (`REDIS_URL`); in this process without it."""
        self._session = session
        self.app = app
        self._base = base_url.rstrip("/")
        self._urls: dict[str, tuple[str, URL]] = {}  # path: the token and the URL with it
        self._clock = clock or SystemClock()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self.token_fetches = 0
        windows = ((60.0, PER_MEMBER_PER_MINUTE), (3600.0, PER_MEMBER_PER_HOUR))
        now = self._now
        self.recipients: Windows
        if redis is not None:
            from handlers.wecom.windows import RedisWindows  # imported only with Redis

            self.recipients = RedisWindows(redis, f"{app.corp_id}:{app.agent_id}", windows, now)
        else:
            self.recipients = RecipientWindows(windows, now)
        self._uncounted = False  # logged that the shared count is out of reach
        self._count_again_at = 0.0  # monotonic: when to try the shared count again

    def _now(self) -> float:
        return self._clock.now().timestamp()

    # ----------------------------------------------------------------- messages
    async def send(
        self, touser: Sequence[str], msgtype: str, content: Mapping[str, Any]
    ) -> Delivery:
        """message/send of one message to members (userids) of the app."""
        body = {
            "touser": "|".join(touser),
            "agentid": self.app.agent_id,
            "msgtype": msgtype,
            msgtype: dict(content),
        }
        for user in touser:
            if user != "@all":
                await self._count(user)
        answer = await self._json_call("POST", "/cgi-bin/message/send", json=body)
        if not isinstance(answer, dict):
            return Delivery(answer)
        invalid = _users(answer.get("invaliduser"))
        unlicensed = _users(answer.get("unlicenseduser"))
        wanted = {user.lower() for user in touser}
        outcome: Outcome = SENT
        if "@all" not in wanted and wanted and wanted <= invalid | unlicensed:
            outcome = Unreachable(f"not reachable by the app: {', '.join(sorted(wanted))}")
        return Delivery(
            outcome,
            msg_id=str(answer.get("msgid") or ""),
            response_code=str(answer.get("response_code") or ""),
            invalid_users=invalid,
            unlicensed_users=unlicensed,
        )

    async def _count(self, user: str) -> None:
        if self._uncounted and time.monotonic() < self._count_again_at:
            return  # Redis just failed: replies do not wait for its timeout message after message
        try:
            within = await self.recipients.count(user)
        except CountUnavailable as exc:
            self._count_again_at = time.monotonic() + COUNT_AGAIN_AFTER
            if not self._uncounted:
                self._uncounted = True
                log.warning(
                    "wecom: messages go uncounted, the shared count is out of reach: %s", exc
                )
            return
        if self._uncounted:
            self._uncounted = False
            log.info("wecom: the shared count per member answers again")
        if not within:
            log.warning("wecom: a message past the per-member limit (WeCom may drop it)")

    async def send_text(self, touser: Sequence[str], content: str) -> Delivery:
        """A text message; longer than WeCom's 2048 bytes, it goes as several, cut at lines."""
        return await self._send_parts(touser, "text", content)

    async def send_markdown(self, touser: Sequence[str], content: str) -> Delivery:
        """Markdown (rendered by the WeCom client only; the WeChat plug-in shows no markdown)."""
        return await self._send_parts(touser, "markdown", content)

    async def _send_parts(self, touser: Sequence[str], msgtype: str, content: str) -> Delivery:
        """`content` as messages of `msgtype` of at most WeCom's 2048 bytes, cut at lines; the
        first that is not sent stops the rest and is the answer."""
        delivery = Delivery(Refused("an empty text"))
        for part in split_text(content):
            delivery = await self.send(touser, msgtype, {"content": part})
            if not delivery.sent:
                break
        return delivery

    async def send_image(self, touser: Sequence[str], media_id: str) -> Delivery:
        return await self.send(touser, "image", {"media_id": media_id})

    async def send_file(self, touser: Sequence[str], media_id: str) -> Delivery:
        return await self.send(touser, "file", {"media_id": media_id})

    async def send_card(self, touser: Sequence[str], card: Mapping[str, Any]) -> Delivery:
        """A template card (`handlers.wecom.cards`); interactive ones answer a response_code."""
        return await self.send(touser, "template_card", card)

    async def update_card(
        self,
        userids: Sequence[str],
        response_code: str,
        *,
        replace_name: str | None = None,
        card: Mapping[str, Any] | None = None,
    ) -> Delivery:
        """message/update_template_card: grey the buttons out under `replace_name`, or replace
        the whole card. Each response_code works once (and for 72 hours)."""
        if (replace_name is None) == (card is None):
            raise ValueError("give either replace_name or card")
        body: dict[str, Any] = {
            "userids": list(userids),
            "agentid": self.app.agent_id,
            "response_code": response_code,
        }
        if replace_name is not None:
            body["button"] = {"replace_name": replace_name}
        else:
            body["template_card"] = dict(card or {})
        answer = await self._json_call("POST", "/cgi-bin/message/update_template_card", json=body)
        if not isinstance(answer, dict):
            return Delivery(answer)
        return Delivery(SENT, invalid_users=_users(answer.get("invaliduser")))

    # ----------------------------------------------------------------- media and menu
    async def upload(
        self, kind: MediaKind, filename: str, data: bytes, content_type: str
    ) -> Media | Failure:
        """media/upload of a temporary file (exports, charts) for an image or file message."""

        def form() -> aiohttp.FormData:
            # The file name as it is (UTF-8), not percent-encoded: WeCom shows it as it gets it.
            parts = aiohttp.FormData(quote_fields=False)
            parts.add_field("media", data, filename=filename, content_type=content_type)
            return parts

        answer = await self._json_call(
            "POST", "/cgi-bin/media/upload", params={"type": kind}, form=form
        )
        if not isinstance(answer, dict):
            return answer
        media_id = answer.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            return Transient("media/upload answered without a media_id")
        return Media(media_id, str(answer.get("type") or kind), _int(answer.get("created_at")))

    async def download(self, media_id: str) -> Download | Failure:
        """media/get: a member's photo (the MediaId of an image message), as bytes."""
        answer = await self._call("GET", "/cgi-bin/media/get", params={"media_id": media_id})
        if isinstance(answer, dict):
            return Transient("media/get answered JSON without an error")
        return answer

    async def create_menu(self, buttons: Sequence[Mapping[str, Any]]) -> Outcome:
        """menu/create: the app's menu (`handlers.wecom.cards.menu`)."""
        answer = await self._json_call(
            "POST",
            "/cgi-bin/menu/create",
            params={"agentid": str(self.app.agent_id)},
            json={"button": [dict(b) for b in buttons]},
        )
        return SENT if isinstance(answer, dict) else answer

    # ----------------------------------------------------------------- token and HTTP
    async def access_token(self) -> str | Failure:
        """The app's token: the cached one until 5 minutes before it expires, else a new one."""
        token = self._token
        if token is not None and self._clock.now() < token.refresh_at:
            return token.value
        async with self._lock:
            token = self._token
            if token is not None and self._clock.now() < token.refresh_at:
                return token.value
            return await self._fetch_token()

    def forget_token(self, value: str) -> None:
        """WeCom refused `value`: the next call fetches a new one (unless another task
        already has)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch_token(self) -> str | Failure:
        self.token_fetches += 1
        answer = await self._request(
            "GET",
            "/cgi-bin/gettoken",
            {"corpid": self.app.corp_id, "corpsecret": self.app.secret},
            None,
            None,
        )
        if isinstance(answer, _TokenRefused):
            answer = failure_of(answer.errcode, answer.errmsg)
        if isinstance(answer, Failure):
            log.warning("wecom gettoken for agent %s failed: %s", self.app.agent_id, answer)
            return answer
        if not isinstance(answer, dict):
            return Transient("gettoken answered a file")
        value, lifetime = answer.get("access_token"), _int(answer.get("expires_in"))
        if not isinstance(value, str) or not value or lifetime <= 0:
            return Transient("gettoken answered without a token")
        early = min(REFRESH_EARLY, timedelta(seconds=lifetime / 2))
        refresh_at = self._clock.now() + timedelta(seconds=lifetime) - early
        self._token = _Token(value, refresh_at)
        return value

    async def _json_call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any] | Failure:
        answer = await self._call(method, path, params=params, json=json, form=form)
        if isinstance(answer, Download):
            return Transient(f"{path} answered a file")
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        form: Callable[[], aiohttp.FormData] | None = None,
    ) -> dict[str, Any] | Download | Failure:
        """One API call with the app's token; fetched anew and retried once if refused."""
        answer: dict[str, Any] | Download | Failure | _TokenRefused = Transient("not called")
        for attempt in (1, 2):
            token = await self.access_token()
            if not isinstance(token, str):
                return token
            query = self._url(path, token) if params is None else {**params, "access_token": token}
            answer = await self._request(method, path, query, json, form() if form else None)
            if not isinstance(answer, _TokenRefused):
                return answer
            if attempt == 1:
                log.info("wecom refused the token of agent %s; fetching anew", self.app.agent_id)
                self.forget_token(token)
        assert isinstance(answer, _TokenRefused)
        return failure_of(answer.errcode, answer.errmsg)

    def _url(self, path: str, token: str) -> URL:
        """The URL of `path` with `token` in its query, built once per token: building it
        (yarl's quoting) was a good part of a message/send's own cost."""
        kept = self._urls.get(path)
        if kept is None or kept[0] != token:
            url = URL(self._base + path).extend_query(access_token=token)
            self._urls[path] = kept = (token, url)
        return kept[1]

    async def _request(
        self,
        method: str,
        path: str,
        query: URL | Mapping[str, str],
        json: Mapping[str, Any] | None,
        data: aiohttp.FormData | None,
    ) -> dict[str, Any] | Download | Failure | _TokenRefused:
        """One HTTP request: to the URL `query` is (with its token), or to `path` with the
        parameters `query` is."""
        url, params = (query, None) if isinstance(query, URL) else (self._base + path, query)
        try:
            async with self._session.request(
                method, url, params=params, json=json, data=data, timeout=self._timeout
            ) as response:
                if response.status == 429:
                    return RetryAfter(_retry_after(response.headers.get("Retry-After")), "429")
                if response.status != 200:
                    return Transient(f"{path} answered HTTP {response.status}")
                if path in BINARY:
                    kind = response.content_type
                    if kind not in ("application/json", "text/plain"):
                        name = getattr(response.content_disposition, "filename", None) or ""
                        return Download(await response.read(), kind, name)
                body = await response.read()
            # JSON is UTF-8 (RFC 8259), as WeCom answers it: no charset to look up per answer.
            answer = jsonlib.loads(body) if body.strip() else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Transient(f"{path}: {type(exc).__name__}")
        except ValueError:
            return Transient(f"{path} answered something that is not JSON")
        if not isinstance(answer, dict):
            return Transient(f"{path} answered JSON that is not an object")
        errcode, errmsg = _int(answer.get("errcode")), str(answer.get("errmsg") or "")
        if errcode in TOKEN_REFUSED:
            return _TokenRefused(errcode, errmsg)
        if errcode:
            return failure_of(errcode, errmsg)
        return answer


@dataclass(frozen=True, slots=True)
class _TokenRefused:
    """WeCom refused the token (40014, 42001): fetch a new one and try again, once."""

    errcode: int
    errmsg: str


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in parts of at most `limit` UTF-8 bytes, cut after a line where one fits."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:  # longer than a whole part: cut it by characters
            if current:
                parts.append(current)
                current = ""
            head = _head(line, limit)
            parts.append(head)
            line = line[len(head) :]
        if len((current + line).encode()) > limit:
            parts.append(current)
            current = ""
        current += line
    parts.append(current)
    return [part.rstrip("\r\n") for part in parts if part.strip()]


def _head(line: str, room: int) -> str:
    """The longest start of `line` that fits in `room` bytes."""
    low, high = 0, len(line)
    while low < high:
        middle = (low + high + 1) // 2
        if len(line[:middle].encode()) <= room:
            low = middle
        else:
            high = middle - 1
    return line[:low]


def _users(value: object) -> frozenset[str]:
    """WeCom's "a|b" (message/send) or ["a", "b"] (update_template_card), lower-cased."""
    if isinstance(value, str):
        return frozenset(u.lower() for u in value.split("|") if u)
    if isinstance(value, list):
        return frozenset(str(u).lower() for u in value if u)
    return frozenset()


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def _retry_after(value: str | None) -> float:
    try:
        return max(1.0, float(value or 1))
    except ValueError:
        return 1.0
