"""Simulated Telegram users: they push the updates a real client would into a
:class:`~bot.localapi.server.LocalBotAPI`, and read the bot's replies back.

Tests drive them directly; the web chat of ``daka demo`` drives them for a person.
"""

from __future__ import annotations

import itertools
import mimetypes
from typing import TYPE_CHECKING, Any

from .records import JSON, CallbackAnswer, SentMessage
from .tghtml import utf16_len

if TYPE_CHECKING:
    from .server import LocalBotAPI

__all__ = ["FakeUser"]

_callback_ids = itertools.count(4_242_000_000_000_000_001)
_FAKE_WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 18
_FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


class FakeUser:
    """A user in a private chat with the bot (``chat.id == user.id``).

    Every ``send*`` / ``press*`` builds the update Telegram would deliver, pushes it
    (waking the bot's long poll) and returns its ``update_id``.
    """

    def __init__(
        self,
        server: LocalBotAPI,
        user_id: int,
        first_name: str = "Test",
        language_code: str | None = "zh-hans",
        username: str | None = None,
        last_name: str | None = None,
    ) -> None:
        self.server = server
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.last_name = last_name
        self._last_update_id: int | None = None

    def __repr__(self) -> str:
        return f"FakeUser(id={self.id}, first_name={self.first_name!r})"

    # ----------------------------------------------------------------- identity
    @property
    def chat_id(self) -> int:
        return self.id

    @property
    def user_dict(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    @property
    def chat_dict(self) -> JSON:
        chat: JSON = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            chat["last_name"] = self.last_name
        if self.username:
            chat["username"] = self.username
        return chat

    @property
    def last_update_id(self) -> int | None:
        """update_id of the last update this user pushed (None before the first)."""
        return self._last_update_id

    # ----------------------------------------------------------------- building blocks
    def _now(self) -> int:
        return int(self.server.now())

    def _push(self, update: JSON) -> int:
        self._last_update_id = self.server.push_update(update)
        return self._last_update_id

    def message_update(
        self,
        content: JSON,
        *,
        date: int | None = None,
        reply_to: int | None = None,
        forwarded: bool = False,
        forward_from: JSON | None = None,
        forward_date: int | None = None,
    ) -> int:
        """Push a ``message`` update with the given content fields (text, photo, ...)."""
        message: JSON = {
            "message_id": self.server.next_message_id(self.id),
            "from": self.user_dict,
            "chat": self.chat_dict,
            "date": self._now() if date is None else date,
        }
        if forwarded or forward_from is not None:
            sender = forward_from or {
                "id": self.id + 7_000_000_000,
                "is_bot": False,
                "first_name": "Forwarded",
            }
            when = forward_date if forward_date is not None else message["date"] - 3600
            message["forward_origin"] = {"type": "user", "sender_user": sender, "date": when}
            message["forward_date"] = when
        if reply_to is not None:
            original = self._find_message(reply_to)
            if original is not None:
                message["reply_to_message"] = original
        message.update(content)
        return self._push({"message": message})

    def _find_message(self, message_id: int) -> JSON | None:
        for sent in self.server.messages(self.id, include_deleted=True):
            if sent.message_id == message_id:
                return sent.raw
        return None

    # ----------------------------------------------------------------- messages
    def send(self, text: str, *, date: int | None = None, reply_to: int | None = None) -> int:
        """A text message; ``/command args`` gets a ``bot_command`` entity like Telegram's."""
        content: JSON = {"text": text}
        if text.startswith("/") and len(text) > 1:
            word = text.split(maxsplit=1)[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]
        return self.message_update(content, date=date, reply_to=reply_to)

    def send_location(
        self,
        lat: float,
        lon: float,
        *,
        accuracy: float | None = None,
        live_period: int | None = None,
        forwarded: bool = False,
        date: int | None = None,
    ) -> int:
        location: JSON = {"latitude": lat, "longitude": lon}
        if accuracy is not None:
            location["horizontal_accuracy"] = accuracy
        if live_period is not None:
            location["live_period"] = live_period
        return self.message_update({"location": location}, date=date, forwarded=forwarded)

    def send_photo(
        self,
        *,
        forwarded: bool = False,
        caption: str | None = None,
        content: bytes = _FAKE_JPEG,
        date: int | None = None,
    ) -> int:
        small = self.server.register_file(content[:1000], kind="photo", mime_type="image/jpeg")
        large = self.server.register_file(content, kind="photo", mime_type="image/jpeg")
        photo = [
            {**small, "width": 90, "height": 67},
            {**large, "width": 1280, "height": 960},
        ]
        body: JSON = {"photo": photo}
        if caption is not None:
            body["caption"] = caption
        return self.message_update(body, date=date, forwarded=forwarded)

    def send_sticker(self, *, emoji: str = "👍", date: int | None = None) -> int:
        info = self.server.register_file(_FAKE_WEBP, kind="sticker", mime_type="image/webp")
        sticker: JSON = {
            **info,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
        }
        return self.message_update({"sticker": sticker}, date=date)

    def send_document(
        self,
        filename: str,
        content: bytes,
        *,
        mime_type: str | None = None,
        caption: str | None = None,
        date: int | None = None,
    ) -> int:
        """A file; its bytes are served back by getFile + /file/bot<token>/<path>."""
        mime = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        info = self.server.register_file(
            content, kind="document", file_name=filename, mime_type=mime
        )
        document: JSON = {**info, "file_name": filename, "mime_type": mime}
        body: JSON = {"document": document}
        if caption is not None:
            body["caption"] = caption
        return self.message_update(body, date=date)

    def send_contact(
        self, phone_number: str = "+8613800000000", *, date: int | None = None
    ) -> int:
        """Share own contact (what a ``request_contact`` button sends)."""
        contact: JSON = {
            "phone_number": phone_number,
            "first_name": self.first_name,
            "user_id": self.id,
        }
        return self.message_update({"contact": contact}, date=date)

    # ----------------------------------------------------------------- buttons
    def press(self, message: SentMessage | int, data: str) -> int:
        """Press an inline button with ``data`` under a bot message (object or id)."""
        if isinstance(message, int):
            current = self.server.message(self.id, message)
        else:
            try:
                current = self.server.message(message.chat_id, message.message_id)
            except AssertionError:
                current = message
        query: JSON = {
            "id": str(next(_callback_ids)),
            "from": self.user_dict,
            "message": current.raw,
            "chat_instance": str(-(self.id * 31 + 7)),
            "data": data,
        }
        return self._push({"callback_query": query})

    def press_button(self, message: SentMessage | int, text: str) -> int:
        """Press the inline button whose visible text is (or uniquely contains) ``text``.

        Looks at the message as it is *now* (after edits), like a real user would.
        """
        message_id = message if isinstance(message, int) else message.message_id
        current = self.server.message(self.id, message_id)
        return self.press(current, current.callback_data(text))

    # ----------------------------------------------------------------- reading replies
    async def next_reply(self, timeout: float = 30.0) -> SentMessage:  # noqa: ASYNC109
        return await self.server.next_reply(self.id, timeout)

    async def ask(self, text: str, timeout: float = 30.0) -> SentMessage:  # noqa: ASYNC109
        """send(text) then wait for the next reply."""
        self.send(text)
        return await self.server.next_reply(self.id, timeout)

    async def expect_no_reply(self, within: float = 0.3) -> None:
        await self.server.expect_no_reply(self.id, within)

    async def next_callback_answer(self, timeout: float = 30.0) -> CallbackAnswer:  # noqa: ASYNC109
        return await self.server.next_callback_answer(timeout, chat_id=self.id)

    def drain(self) -> list[SentMessage]:
        return self.server.drain(self.id)

    def messages(self, *, include_deleted: bool = False) -> list[SentMessage]:
        return self.server.messages(self.id, include_deleted=include_deleted)

    def last_message(self) -> SentMessage:
        return self.server.last_message(self.id)

    def transcript(self) -> str:
        return self.server.transcript(self.id)

    def update(self, **changes: Any) -> None:
        """Change profile fields (first_name, username, language_code, last_name)."""
        for key, value in changes.items():
            if key not in ("first_name", "username", "language_code", "last_name"):
                raise AttributeError(key)
            setattr(self, key, value)
        self.server.register_chat(self.chat_dict)
