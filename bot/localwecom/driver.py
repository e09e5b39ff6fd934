"""WeCom's side of the callback, played against a URL: the GET verification, and encrypted
POSTs signed with msg_signature, timestamp and nonce, tried again (same payload, same MsgId)
when no 200 comes within the timeout, 3 tries in all, as WeCom does. A passive reply (an
encrypted body) is verified, decrypted and kept."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from domain.clock import Clock, SystemClock
from handlers.wecom.crypto import WeComCrypto, parse_xml

from . import events

if TYPE_CHECKING:
    from .server import LocalWeCom


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try: the HTTP status, or None and what went wrong (a timeout, a refused connection)."""

    status: int | None
    body: bytes = b""
    error: str = ""


@dataclass(slots=True)
class Push:
    """One callback as WeCom made it: the plaintext, each try, and a passive reply if any."""

    xml: str
    attempts: list[Attempt] = field(default_factory=list)
    reply: str | None = None

    @property
    def acknowledged(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].status == 200

    @property
    def statuses(self) -> list[int | None]:
        return [a.status for a in self.attempts]


class CallbackDriver:
    """Plays WeCom against the app's callback URL with the app's Token and EncodingAESKey."""

    def __init__(
        self,
        url: str,
        *,
        token: str,
        aes_key: str,
        corp_id: str,
        agent_id: int,
        session: aiohttp.ClientSession,
        clock: Clock | None = None,
        timeout: float = 5.0,
        tries: int = 3,
        wecom: LocalWeCom | None = None,
    ) -> None:
        self.url = url
        self.crypto = WeComCrypto(token, aes_key, corp_id)
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.session = session
        self.clock = clock or SystemClock()
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.tries = tries
        self.wecom = wecom
        self.pushes: list[Push] = []
        self._msg_ids = 7_000_000_000_000_000_000

    # ----------------------------------------------------------------- the protocol
    async def verify_url(self, echo: str | None = None) -> tuple[int, str, str]:
        """The GET WeCom sends when the admin saves the URL: (status, body, expected body)."""
        plain = echo if echo is not None else str(secrets.randbelow(10**19))
        sealed = self.crypto.seal(plain, self._timestamp(), _nonce())
        query = {
            "msg_signature": sealed.signature,
            "timestamp": sealed.timestamp,
            "nonce": sealed.nonce,
            "echostr": sealed.encrypt,
        }
        async with self.session.get(self.url, params=query, timeout=self.timeout) as response:
            return response.status, await response.text(), plain

    async def push(self, xml: str) -> Push:
        """One callback: sealed once, posted until a 200 comes or the tries run out."""
        sealed = self.crypto.seal(xml, self._timestamp(), _nonce())
        body = (
            f"<xml><ToUserName>{events.cdata(self.corp_id)}</ToUserName>"
            f"<AgentID>{events.cdata(self.agent_id)}</AgentID>"
            f"<Encrypt>{events.cdata(sealed.encrypt)}</Encrypt></xml>"
        )
        query = {"msg_signature": sealed.signature, "timestamp": sealed.timestamp}
        query["nonce"] = sealed.nonce
        push = Push(xml)
        self.pushes.append(push)
        for _ in range(self.tries):
            attempt = await self.post(body.encode(), query)
            push.attempts.append(attempt)
            if attempt.status == 200:
                if attempt.body.strip():
                    push.reply = self._open_reply(attempt.body)
                break
        return push

    async def post(self, body: bytes, query: dict[str, str]) -> Attempt:
        """One POST as it is (tests of refusals make their own bodies and signatures)."""
        try:
            async with self.session.post(
                self.url, params=query, data=body, timeout=self.timeout
            ) as response:
                return Attempt(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Attempt(None, error=type(exc).__name__)

    # ----------------------------------------------------------------- what members do
    async def send_text(self, user: str, content: str) -> Push:
        xml = events.text(self.corp_id, self.agent_id, user, self._now(), content, self._id())
        return await self.push(xml)

    async def send_image(self, user: str, media_id: str, pic_url: str = "") -> Push:
        url = pic_url or f"https://wework.qpic.cn/wwpic/{media_id[:12]}/0"
        xml = events.image(
            self.corp_id, self.agent_id, user, self._now(), media_id, self._id(), url
        )
        return await self.push(xml)

    async def send_location(
        self, user: str, latitude: float, longitude: float, label: str = ""
    ) -> Push:
        xml = events.location(
            self.corp_id, self.agent_id, user, self._now(), latitude, longitude, label, self._id()
        )
        return await self.push(xml)

    async def report_location(
        self, user: str, latitude: float, longitude: float, precision: float = 30.0
    ) -> Push:
        xml = events.location_report(
            self.corp_id, self.agent_id, user, self._now(), latitude, longitude, precision
        )
        return await self.push(xml)

    async def pick_location(
        self,
        user: str,
        latitude: float,
        longitude: float,
        label: str,
        *,
        key: str = "checkin",
        poiname: str = "",
    ) -> Push:
        xml = events.location_select(
            self.corp_id,
            self.agent_id,
            user,
            self._now(),
            key,
            latitude,
            longitude,
            label,
            poiname,
        )
        return await self.push(xml)

    async def click(self, user: str, key: str) -> Push:
        return await self.push(events.click(self.corp_id, self.agent_id, user, self._now(), key))

    async def enter(self, user: str) -> Push:
        return await self.push(events.enter_agent(self.corp_id, self.agent_id, user, self._now()))

    async def press(
        self,
        user: str,
        task_id: str,
        key: str,
        *,
        card_type: str = "button_interaction",
        selected: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> Push:
        """A card's button (or submit) pressed: with a linked `LocalWeCom`, the callback
        carries a response_code that card accepts."""
        if self.wecom is not None:
            code = self.wecom.press(self.agent_id, task_id)
        else:
            code = secrets.token_urlsafe(32)
        xml = events.card_event(
            self.corp_id, self.agent_id, user, self._now(), key, task_id, card_type, code, selected
        )
        return await self.push(xml)

    async def submit(
        self,
        user: str,
        task_id: str,
        ticked: Sequence[str] = (),
        *,
        picked: Mapping[str, str] | None = None,
    ) -> Push:
        """A member answers a vote card (ticks the options `ticked`, by id) or a multiple-choice
        card (picks in its drop-downs, `picked`: question_key to option id; one left alone
        keeps its selected_id, or its first option) and taps its submit button, as the WeCom
        client lets them: only the card's own options, at most one on a single-choice vote
        card, and not once its submit is greyed out. Needs a linked `LocalWeCom`."""
        if self.wecom is None:
            raise RuntimeError("submitting a card needs the LocalWeCom that sent it")
        card = self.wecom.cards.get((self.agent_id, task_id))
        if card is None:
            raise KeyError(f"no interactive card {task_id!r} of agent {self.agent_id}")
        if card.replaced_by is not None:
            raise ValueError(f"card {task_id!r} is answered ({card.replaced_by}): no submit")
        body = card.body
        if body.get("card_type") == "vote_interaction":
            box = body["checkbox"]
            ids = [str(o["id"]) for o in box["option_list"]]
            unknown = [t for t in ticked if t not in ids]
            if unknown:
                raise ValueError(f"card {task_id!r} has no option {unknown[0]!r}")
            if box.get("mode", 0) == 0 and len(set(ticked)) > 1:
                raise ValueError(f"card {task_id!r} takes one option")
            chosen = [i for i in ids if i in set(ticked)]  # as the client lists them
            selected: list[tuple[str, Sequence[str]]] = [(str(box["question_key"]), chosen)]
        elif body.get("card_type") == "multiple_interaction":
            selected = []
            for select in body["select_list"]:
                ids = [str(o["id"]) for o in select["option_list"]]
                default = select.get("selected_id")
                choice = (picked or {}).get(select["question_key"], default)
                if choice not in ids:
                    choice = ids[0]
                selected.append((str(select["question_key"]), [choice]))
        else:
            raise ValueError(f"card {task_id!r} is a {body.get('card_type')}: press its buttons")
        code = self.wecom.press(self.agent_id, task_id)
        xml = events.card_event(
            self.corp_id,
            self.agent_id,
            user,
            self._now(),
            str(body["submit_button"]["key"]),
            task_id,
            str(body["card_type"]),
            code,
            selected,
        )
        return await self.push(xml)

    # ----------------------------------------------------------------- helpers
    def _open_reply(self, body: bytes) -> str:
        envelope = parse_xml(body)
        encrypt = envelope.findtext("Encrypt") or ""
        self.crypto.verify(
            envelope.findtext("MsgSignature") or "",
            envelope.findtext("TimeStamp") or "",
            envelope.findtext("Nonce") or "",
            encrypt,
        )
        return self.crypto.decrypt(encrypt).decode("utf-8")

    def _now(self) -> int:
        return int(self.clock.now().timestamp())

    def _timestamp(self) -> str:
        return str(self._now())

    def _id(self) -> str:
        self._msg_ids += 1
        return str(self._msg_ids)


def _nonce() -> str:
    return str(secrets.randbelow(10**10))
