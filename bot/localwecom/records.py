"""What the local WeCom server keeps, as tests (and one day the demo) read it: calls, messages
delivered or silently dropped, template cards and their response codes, media, menus."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = dict[str, Any]


class ApiError(Exception):
    """An errcode answer (HTTP 200, as WeCom answers every refusal)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass(frozen=True, slots=True)
class Call:
    """One API request as the server saw it (no token, no secret)."""

    path: str
    agent_id: int | None
    errcode: int
    status: int = 200
    errmsg: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.errcode == 0


@dataclass(slots=True)
class Delivered:
    """One message to one member: its type, its body (the msgtype's object), whether WeCom
    cut its text, and whether the per-member limit dropped it (silently, as WeCom does)."""

    msg_id: str
    agent_id: int
    userid: str
    msgtype: str
    body: JSON
    at: datetime
    truncated: bool = False
    dropped: bool = False
    card: Card | None = None

    @property
    def text(self) -> str:
        """The text or markdown content, or a card's title ("" for other types)."""
        if self.msgtype in ("text", "markdown"):
            return str(self.body.get("content", ""))
        if self.msgtype == "template_card":
            return str(self.body.get("main_title", {}).get("title", ""))
        return ""

    def button_keys(self) -> list[str]:
        """A button card's keys, in order."""
        return [str(b.get("key")) for b in self.body.get("button_list", [])]


@dataclass(slots=True)
class Card:
    """An interactive template card as the members see it now: the last full card sent or
    put in place, and the text its buttons were replaced by (greyed out), if any."""

    agent_id: int
    task_id: str
    card_type: str
    body: JSON
    recipients: tuple[str, ...]
    replaced_by: str | None = None
    updates: list[JSON] = field(default_factory=list)


@dataclass(slots=True)
class ResponseCode:
    """A code that updates one card once, within 72 hours of being given."""

    code: str
    card: Card
    issued: datetime
    used: bool = False


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A temporary media file (uploaded by the app, or a member's photo), valid 3 days."""

    media_id: str
    kind: str
    filename: str
    content_type: str
    data: bytes
    created: datetime


@dataclass(slots=True)
class Grant:
    """An access_token given to an app, until it expires or a test revokes it."""

    token: str
    agent_id: int
    expires: datetime
    revoked_with: int | None = None  # the errcode a revoked token is answered with


@dataclass(slots=True)
class FakeApp:
    """A self-built app of the fake corp."""

    agent_id: int
    secret: str = field(repr=False)
    callback: bool = True  # a callback URL is set: interactive cards may be sent
    gettoken_calls: int = 0
    menu: list[JSON] | None = None
