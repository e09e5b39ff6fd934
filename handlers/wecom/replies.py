"""Replies leave after the commit: what a turn says is recorded (`WeComOut`) as JSON records,
stored with the event in the journal in the turn's transaction, and sent once that commits,
one person's in order. A crash after the commit loses none: the journal keeps them until they
are marked sent, and they go out on the next start.

A record is one of:
- `{"send": "text", "content": ...}` and `{"send": "template_card", "card": {...}}`;
- `{"update": RESPONSE_CODE, "card": {...} | "replace_name": ..., "otherwise": [records]}`:
  the card a click came from, changed in place; when WeCom refuses (the code spent or past its
  72 hours) the `otherwise` records are sent instead;
- `{"file": NAME, "data": BASE64, "image": bool, "caption": ...}`: uploaded (media/upload),
  then sent as an image or a file, the caption after it as a text;
- `{"make": MAKER, "args": {...}, "name": ..., "failed": ..., "caption": ...}`: a file made
  now, in a process of its own (`storage.makers`), then sent as above; `failed` is said when
  it cannot be made or WeCom refuses it.

What WeCom answers is read by the one error policy (`handlers.wecom.errors`): a rate limit
waits, a transient failure is tried again with backoff (at most `max_attempts` tries), a
member out of reach drops their remaining replies, a refusal is logged and the next record
goes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import mimetypes
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.delivery import Failure, Outcome, Refused, RetryAfter, Sent, Unreachable
from domain.kinds.photo import picture
from handlers.wecom.api import Delivery, Media, WeComAPI
from storage.makers import make_file

log = logging.getLogger(__name__)

Record = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]


def text(content: str) -> Record:
    return {"send": "text", "content": content}


def send_card(card: Mapping[str, Any]) -> Record:
    return {"send": "template_card", "card": dict(card)}


def update(
    code: str,
    *,
    card: Mapping[str, Any] | None = None,
    replace_name: str | None = None,
    otherwise: Sequence[Record] = (),
) -> Record:
    record: Record = {"update": code, "otherwise": list(otherwise)}
    if card is not None:
        record["card"] = dict(card)
    else:
        record["replace_name"] = replace_name or "✔"
    return record


def file(name: str, data: bytes, *, image: bool, caption: str) -> Record:
    encoded = base64.b64encode(data).decode("ascii")
    return {"file": name, "data": encoded, "image": image, "caption": caption}


def made(maker: str, args: Mapping[str, Any], name: str, failed: str, caption: str) -> Record:
    return {"make": maker, "args": dict(args), "name": name, "failed": failed, "caption": caption}


@dataclass
class ReplySender:
    """Sends one person's records in order; `database_url` is where made files read from."""

    api: WeComAPI
    database_url: str | None = None
    max_attempts: int = 5
    sleep: Sleep = asyncio.sleep

    async def send(self, user: str, records: Sequence[Record]) -> None:
        """Every record to `user`, in order; none after WeCom says they cannot be reached."""
        for record in records:
            outcome = await self._record(user, record)
            if isinstance(outcome, Unreachable):
                log.info("wecom replies to a member out of reach dropped: %s", outcome.detail)
                return

    async def _record(self, user: str, record: Record) -> Outcome:
        if "send" in record:
            return await self._try(lambda: self._sent(user, record))
        if "update" in record:
            return await self._update(user, record)
        if "file" in record:
            data = base64.b64decode(str(record.get("data", "")))
            return await self._file(user, str(record["file"]), data, record)
        if "make" in record:
            return await self._made(user, record)
        log.warning("a wecom reply of unknown kind skipped: %s", sorted(record))
        return Refused("unknown record")

    async def _update(self, user: str, record: Record) -> Outcome:
        code = str(record["update"])
        card, name = record.get("card"), record.get("replace_name")

        async def call() -> Outcome:
            if card is not None:
                return (await self.api.update_card([user], code, card=card)).outcome
            return (await self.api.update_card([user], code, replace_name=str(name))).outcome

        outcome = await self._try(call)
        if isinstance(outcome, Refused):  # the code spent or too old: say it anew
            for other in record.get("otherwise") or []:
                outcome = await self._record(user, other)
        return outcome

    async def _file(self, user: str, name: str, data: bytes, record: Record) -> Outcome:
        """Uploaded and sent; an image goes as a file when it is not a JPEG or PNG (all
        media/upload takes as an image) or when WeCom refuses it as one."""
        image = bool(record.get("image")) and picture(data)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"

        async def upload() -> Media | Failure:
            return await self.api.upload("image" if image else "file", name, data, content_type)

        media: Media | Failure = await self._try_upload(upload)
        if image and isinstance(media, Refused):
            log.info("an image refused by media/upload goes as a file: %s", media.detail)
            return await self._file(user, name, data, {**record, "image": False})
        if not isinstance(media, Media):
            return media
        send = self.api.send_image if image else self.api.send_file
        outcome = await self._try(lambda: self._delivered(send([user], media.media_id)))
        if image and isinstance(outcome, Refused):
            return await self._file(user, name, data, {**record, "image": False})
        caption = str(record.get("caption") or "")
        if isinstance(outcome, Sent) and caption:
            outcome = await self._record(user, text(caption))
        return outcome

    async def _made(self, user: str, record: Record) -> Outcome:
        name, failed = str(record.get("name") or "file"), str(record.get("failed") or "")
        made_file = await make_file(
            str(record["make"]), record.get("args") or {}, name, self.database_url
        )
        if made_file is None:
            return await self._record(user, text(failed))
        path, rows = made_file
        try:
            data = await asyncio.to_thread(Path(path).read_bytes)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
        caption = str(record.get("caption") or "").replace("{rows}", f"{rows:,}")
        outcome = await self._file(user, name, data, {"caption": caption})
        if isinstance(outcome, Refused) and failed:  # made, but WeCom refused it (too large)
            outcome = await self._record(user, text(failed))
        return outcome

    async def _sent(self, user: str, record: Record) -> Outcome:
        if record["send"] == "template_card":
            return (await self.api.send_card([user], record["card"])).outcome
        return (await self.api.send_text([user], str(record["content"]))).outcome

    @staticmethod
    async def _delivered(call: Awaitable[Delivery]) -> Outcome:
        return (await call).outcome

    async def _try(self, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        outcome: Outcome = Refused("not tried")
        for attempt in range(1, self.max_attempts + 1):
            outcome = await call()
            if isinstance(outcome, Sent | Refused | Unreachable):
                if isinstance(outcome, Refused):
                    log.warning("a wecom reply was refused: %s", outcome.detail)
                return outcome
            if attempt < self.max_attempts:
                await self.sleep(self._wait(outcome, attempt))
        log.warning("a wecom reply dropped after %d tries: %s", self.max_attempts, outcome)
        return outcome

    async def _try_upload(self, call: Callable[[], Awaitable[Media | Failure]]) -> Media | Failure:
        media: Media | Failure = Refused("not tried")
        for attempt in range(1, self.max_attempts + 1):
            media = await call()
            if isinstance(media, Media | Refused | Unreachable):
                return media
            if attempt < self.max_attempts:
                await self.sleep(self._wait(media, attempt))
        return media

    @staticmethod
    def _wait(failure: Failure, attempt: int) -> float:
        if isinstance(failure, RetryAfter):
            return failure.seconds
        return min(10.0, 0.5 * 2**attempt)
