"""The local WeCom server: the parts of qyapi.weixin.qq.com Daka calls, over real HTTP.

Time comes from an injected `Clock` (tokens live 7200 s, response codes 72 h, media 3 days, the
per-member limits count a minute and an hour), so tests move time by hand. Every request is
recorded in `calls` (without token or secret); what WeCom would quietly tolerate (a text cut at
2048 bytes) is noted in `problems`, which a test expects to stay empty.

One module of about 430 lines: the corp's state and the six endpoints that read and change it
belong together; what a request must hold is in `.schema`, what is kept in `.records`."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import BodyPartReader, web

from bot.localserving import LocalServer
from domain.clock import Clock, SystemClock

from .records import (
    JSON,
    ApiError,
    Call,
    Card,
    Delivered,
    FakeApp,
    Grant,
    ResponseCode,
    StoredMedia,
)
from .schema import INTERACTIVE, MSGTYPES, bad, check_card, check_content, check_menu

TOKEN_LIFETIME: Final = timedelta(seconds=7200)
CODE_LIFETIME: Final = timedelta(hours=72)
MEDIA_LIFETIME: Final = timedelta(days=3)
PER_MINUTE: Final = 30  # messages one app may send one member (Doc 90454); more are dropped
PER_HOUR: Final = 1000
MEDIA_LIMITS: Final = {"image": 10 << 20, "voice": 2 << 20, "video": 10 << 20, "file": 20 << 20}
MEDIA_TYPES: Final = frozenset(MEDIA_LIMITS)
IMAGE_MAGIC: Final = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")  # media/upload: JPG, PNG only

Handler = Callable[[web.Request, Grant | None], Awaitable[JSON | web.Response]]


@dataclass(slots=True)
class FailureRule:
    """An injected answer for the next `times` calls of `path` (see `LocalWeCom.fail`)."""

    path: str
    errcode: int
    errmsg: str
    status: int
    times: int
    hold: asyncio.Event | None


class LocalWeCom(LocalServer):
    """A fake WeCom corp with its apps and members, serving WeCom's API on this machine."""

    MAX_BODY = 32 << 20

    def __init__(self, corp_id: str = "wwdaka0000000001", *, clock: Clock | None = None) -> None:
        self.corp_id = corp_id
        self.clock = clock or SystemClock()
        self.apps: dict[int, FakeApp] = {}
        self.members: set[str] = set()
        self.grants: dict[str, Grant] = {}
        self.calls: list[Call] = []
        self.delivered: list[Delivered] = []
        self.problems: list[str] = []
        self.cards: dict[tuple[int, str], Card] = {}
        self.codes: dict[str, ResponseCode] = {}
        self.media: dict[str, StoredMedia] = {}
        self._sent: dict[tuple[int, str], deque[datetime]] = {}
        self._failures: list[FailureRule] = []
        self._msg_ids = 0
        self._paths: dict[str, Handler] = {
            "/cgi-bin/gettoken": self._gettoken,
            "/cgi-bin/message/send": self._send,
            "/cgi-bin/message/update_template_card": self._update_card,
            "/cgi-bin/media/upload": self._upload,
            "/cgi-bin/media/get": self._media_get,
            "/cgi-bin/menu/create": self._menu_create,
        }

    # ----------------------------------------------------------------- the corp
    def add_app(
        self, agent_id: int = 1000002, secret: str = "daka-test-secret", *, callback: bool = True
    ) -> FakeApp:
        """An app of the corp; `callback=False`: no callback URL, so no interactive cards."""
        app = FakeApp(agent_id, secret, callback=callback)
        self.apps[agent_id] = app
        return app

    def add_members(self, *userids: str) -> None:
        """Members in the apps' visible range (userids are case-insensitive)."""
        self.members.update(u.lower() for u in userids)

    # ----------------------------------------------------------------- test hooks
    def revoke(self, agent_id: int, errcode: int = 42001) -> None:
        """Invalidate the app's tokens before their time (WeCom may): the next call that uses
        one is answered `errcode` (42001 expired, or 40014 invalid)."""
        for grant in self.grants.values():
            if grant.agent_id == agent_id:
                grant.revoked_with = errcode

    def fail(
        self,
        path: str,
        *,
        errcode: int = -1,
        errmsg: str = "injected",
        status: int = 200,
        times: int = 1,
        hold: asyncio.Event | None = None,
    ) -> None:
        """Answer the next `times` calls of `path` with `errcode` (or HTTP `status` when not
        200), after `hold` is set if given (a client's timeout meets a held answer)."""
        self._failures.append(FailureRule(path, errcode, errmsg, status, times, hold))

    def put_media(
        self, data: bytes, *, filename: str = "photo.jpg", content_type: str = "image/jpeg"
    ) -> str:
        """A member's photo as WeCom keeps it: the MediaId an image callback carries."""
        return self._store_media("image", filename, content_type, data).media_id

    def press(self, agent_id: int, task_id: str) -> str:
        """A member pressed a button of card `task_id`: the fresh response_code its callback
        carries (each click gives one more)."""
        card = self.cards.get((agent_id, task_id))
        if card is None:
            raise KeyError(f"no interactive card {task_id!r} of agent {agent_id}")
        return self._issue_code(card)

    # ----------------------------------------------------------------- reading
    def inbox(self, userid: str) -> list[Delivered]:
        """What reached the member, in order (not the messages the limits dropped)."""
        user = userid.lower()
        return [d for d in self.delivered if d.userid == user and not d.dropped]

    def dropped(self, userid: str | None = None) -> list[Delivered]:
        """Messages the per-member limits dropped (WeCom answers ok and delivers nothing)."""
        user = userid.lower() if userid else None
        return [d for d in self.delivered if d.dropped and user in (None, d.userid)]

    def gettoken_calls(self, agent_id: int) -> int:
        return self.apps[agent_id].gettoken_calls

    # ----------------------------------------------------------------- lifecycle
    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", path, self._handle) for path in self._paths]

    async def stop(self) -> None:
        for rule in self._failures:
            if rule.hold is not None:
                rule.hold.set()
        await super().stop()

    # ----------------------------------------------------------------- HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        rule = self._take_failure(path)
        if rule is not None:
            if rule.hold is not None:
                await rule.hold.wait()
            self.calls.append(Call(path, None, rule.errcode, rule.status, rule.errmsg))
            if rule.status != 200:
                return web.Response(status=rule.status, text="injected")
            return web.json_response({"errcode": rule.errcode, "errmsg": rule.errmsg})
        grant: Grant | None = None
        try:
            if path != "/cgi-bin/gettoken":
                grant = self._grant(request.query.get("access_token"))
            answer = await self._paths[path](request, grant)
        except ApiError as exc:
            agent = grant.agent_id if grant else None
            self.calls.append(Call(path, agent, exc.errcode, errmsg=exc.errmsg))
            return web.json_response({"errcode": exc.errcode, "errmsg": exc.errmsg})
        self.calls.append(Call(path, grant.agent_id if grant else None, 0))
        if isinstance(answer, web.Response):
            return answer
        return web.json_response({"errcode": 0, "errmsg": "ok", **answer})

    def _take_failure(self, path: str) -> FailureRule | None:
        for rule in self._failures:
            if rule.path == path and rule.times > 0:
                rule.times -= 1
                if rule.times == 0:
                    self._failures.remove(rule)
                return rule
        return None

    def _grant(self, token: str | None) -> Grant:
        if not token:
            raise ApiError(41001, "access_token missing")
        grant = self.grants.get(token)
        if grant is None:
            raise ApiError(40014, "invalid access_token")
        if grant.revoked_with is not None:
            raise ApiError(grant.revoked_with, "access_token expired")
        if self.clock.now() >= grant.expires:
            raise ApiError(42001, "access_token expired")
        return grant

    async def _gettoken(self, request: web.Request, _grant: Grant | None) -> JSON:
        if request.query.get("corpid") != self.corp_id:
            raise ApiError(40013, "invalid corpid")
        secret = request.query.get("corpsecret", "")
        app = next(
            (a for a in self.apps.values() if secrets.compare_digest(a.secret, secret)), None
        )
        if app is None:
            raise ApiError(40001, "invalid credential")
        app.gettoken_calls += 1
        now = self.clock.now()
        for grant in self.grants.values():  # the same token while it lasts (Doc 91039)
            if (
                grant.agent_id == app.agent_id
                and grant.revoked_with is None
                and now < grant.expires
            ):
                left = int((grant.expires - now).total_seconds())
                return {"access_token": grant.token, "expires_in": left}
        grant = Grant(secrets.token_urlsafe(48), app.agent_id, now + TOKEN_LIFETIME)
        self.grants[grant.token] = grant
        return {"access_token": grant.token, "expires_in": int(TOKEN_LIFETIME.total_seconds())}

    async def _send(self, request: web.Request, grant: Grant | None) -> JSON:
        assert grant is not None
        body = await _json(request)
        app = self._app_of(body.get("agentid"), grant)
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES:
            raise ApiError(40008, "invalid message type")
        content, truncated = check_content(msgtype, body.get(msgtype))
        if msgtype in MEDIA_TYPES and self._media(content["media_id"]) is None:
            raise ApiError(40007, "invalid media_id")
        interactive = msgtype == "template_card" and content["card_type"] in INTERACTIVE
        if interactive and not app.callback:
            raise bad("an app without a callback URL cannot send interactive cards")
        if interactive and (app.agent_id, content["task_id"]) in self.cards:
            raise bad(f"task_id {content['task_id']!r} was used before")
        wanted = _split(body.get("touser"))
        if len(wanted) > 1000:
            raise ApiError(40031, "invalid userid list")
        users = sorted(self.members) if "@all" in wanted else [u.lower() for u in wanted]
        valid = [u for u in dict.fromkeys(users) if u in self.members]
        invalid = [u for u in dict.fromkeys(users) if u not in self.members]
        if not valid:
            raise ApiError(81013, "user & party & tag all invalid")
        self._msg_ids += 1
        msg_id = f"msg{self._msg_ids:08d}"
        card: Card | None = None
        answer: JSON = {"msgid": msg_id}
        if interactive:
            card = Card(
                app.agent_id, content["task_id"], content["card_type"], content, tuple(valid)
            )
            self.cards[(app.agent_id, card.task_id)] = card
            answer["response_code"] = self._issue_code(card)
        if truncated:
            self.problems.append(f"a {msgtype} over {2048} bytes to {'|'.join(valid)} was cut")
        now = self.clock.now()
        for user in valid:
            dropped = not self._within_limits(app.agent_id, user, now)
            self.delivered.append(
                Delivered(
                    msg_id, app.agent_id, user, msgtype, content, now, truncated, dropped, card
                )
            )
        if invalid:
            answer["invaliduser"] = "|".join(invalid)
        return answer

    async def _update_card(self, request: web.Request, grant: Grant | None) -> JSON:
        assert grant is not None
        body = await _json(request)
        app = self._app_of(body.get("agentid"), grant)
        issued = self.codes.get(str(body.get("response_code", "")))
        if issued is None or issued.card.agent_id != app.agent_id:
            raise bad("response_code unknown")
        if issued.used:
            raise bad("response_code already used")
        if self.clock.now() - issued.issued > CODE_LIFETIME:
            raise bad("response_code expired")
        userids = body.get("userids") or []
        if not isinstance(userids, list) or not (userids or body.get("atall")):
            raise bad("no userids")
        card = issued.card
        button, replacement = body.get("button"), body.get("template_card")
        if isinstance(button, dict) and isinstance(button.get("replace_name"), str):
            card.replaced_by = button["replace_name"]
        elif isinstance(replacement, dict):
            check_card(replacement)
            card.body, card.replaced_by = replacement, None
        else:
            raise bad("neither button.replace_name nor template_card")
        issued.used = True
        card.updates.append(body)
        invalid = [u for u in userids if str(u).lower() not in card.recipients]
        return {"invaliduser": invalid} if invalid else {}

    async def _upload(self, request: web.Request, grant: Grant | None) -> JSON:
        kind = request.query.get("type", "")
        if kind not in MEDIA_TYPES:
            raise ApiError(40005, "invalid media type")
        if not request.content_type.startswith("multipart/"):
            raise ApiError(44001, "empty media data")
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "media":
                data = bytes(await part.read())
                if len(data) <= 5:
                    raise ApiError(40006, "invalid file size")
                if len(data) > MEDIA_LIMITS[kind]:
                    raise ApiError(40009 if kind == "image" else 40006, "invalid file size")
                if kind == "image" and not data.startswith(IMAGE_MAGIC):
                    raise ApiError(40004, "invalid media type")  # an image is a JPG or PNG
                content_type = part.headers.get("Content-Type", "application/octet-stream")
                media = self._store_media(kind, part.filename or "file", content_type, data)
                return {"type": kind, "media_id": media.media_id, "created_at": str(_ts(media))}
        raise ApiError(44001, "empty media data")

    async def _media_get(self, request: web.Request, grant: Grant | None) -> web.Response:
        media = self._media(request.query.get("media_id", ""))
        if media is None:
            raise ApiError(40007, "invalid media_id")
        disposition = f'attachment; filename="{media.filename}"'
        return web.Response(
            body=media.data,
            content_type=media.content_type,
            headers={"Content-Disposition": disposition},
        )

    async def _menu_create(self, request: web.Request, grant: Grant | None) -> JSON:
        assert grant is not None
        app = self._app_of(request.query.get("agentid"), grant)
        body = await _json(request)
        app.menu = check_menu(body.get("button"))
        return {}

    # ----------------------------------------------------------------- helpers
    def _app_of(self, agentid: object, grant: Grant) -> FakeApp:
        if agentid is None or agentid == "":
            raise ApiError(41011, "agentid missing")
        if str(agentid) != str(grant.agent_id):
            raise ApiError(40056, "invalid agentid")
        return self.apps[grant.agent_id]

    def _within_limits(self, agent_id: int, user: str, now: datetime) -> bool:
        sent = self._sent.setdefault((agent_id, user), deque())
        while sent and now - sent[0] >= timedelta(hours=1):
            sent.popleft()
        last_minute = sum(1 for at in sent if now - at < timedelta(minutes=1))
        if last_minute >= PER_MINUTE or len(sent) >= PER_HOUR:
            return False
        sent.append(now)
        return True

    def _issue_code(self, card: Card) -> str:
        code = secrets.token_urlsafe(32)
        self.codes[code] = ResponseCode(code, card, self.clock.now())
        return code

    def _store_media(
        self, kind: str, filename: str, content_type: str, data: bytes
    ) -> StoredMedia:
        media_id = secrets.token_urlsafe(36)
        media = StoredMedia(media_id, kind, filename, content_type, data, self.clock.now())
        self.media[media_id] = media
        return media

    def _media(self, media_id: str) -> StoredMedia | None:
        media = self.media.get(media_id)
        if media is None or self.clock.now() - media.created >= MEDIA_LIFETIME:
            return None
        return media


async def _json(request: web.Request) -> JSON:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise bad("Warning: wrong json format.") from None
    if not isinstance(body, dict):
        raise bad("Warning: wrong json format.")
    return body


def _split(touser: Any) -> list[str]:
    if not isinstance(touser, str):
        return []
    return [u for u in touser.split("|") if u]


def _ts(media: StoredMedia) -> int:
    return int(media.created.astimezone(UTC).timestamp())
