"""Sending: sendMessage, sendLocation and the media methods, checked as strictly as Telegram.

Each sent message becomes a :class:`~bot.localapi.records.SentMessage` in its chat (and an
output that wakes whoever waits for the bot's next reply). HTML is parsed as Telegram parses it,
so a stray ``<`` fails here as it would in production; keyboards are validated, and a reply
keyboard is remembered as the chat's current one until a message removes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .files import FileStore
from .params import as_float, as_int, bad
from .records import INLINE_ACTIONS, JSON, SentMessage
from .tghtml import EntityParseError, parse_html, utf16_len


class MessageMethods(FileStore):
    """The send methods and the bookkeeping every sent or edited message shares."""

    def _formatted(
        self, params: JSON, key: str, *, limit: int, required: bool
    ) -> tuple[str | None, list[JSON]]:
        value = params.get(key)
        if value is None:
            if required:
                raise bad("message text is empty")
            return None, []
        text = str(value)
        entities = params.get("entities" if key == "text" else "caption_entities")
        mode = str(params.get("parse_mode") or "").lower()
        if isinstance(entities, list):
            plain, ents = text, entities
        elif mode == "html":
            try:
                plain, ents = parse_html(text)
            except EntityParseError as err:
                raise bad(f"can't parse entities: {err}") from None
        else:
            plain, ents = text, []
        if required and not plain.strip():
            raise bad("message text is empty")
        if utf16_len(plain) > limit:
            raise bad("message is too long" if key == "text" else "message caption is too long")
        return plain, ents

    @staticmethod
    def _markup(params: JSON, *, inline_only: bool = False) -> JSON | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad(
                    'field "inline_keyboard" of the InlineKeyboardMarkup must be '
                    "an Array of Arrays"
                )
            for button in (b for row in rows for b in row):
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad("can't parse inline keyboard button: Text is not specified")
                if not any(button.get(k) is not None for k in INLINE_ACTIONS):
                    raise bad(
                        "can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise bad("BUTTON_DATA_INVALID")
        elif inline_only:
            raise bad("inline keyboard expected")
        elif "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        return markup

    def _new_message(self, chat_id: int, content: JSON, markup: JSON | None) -> JSON:
        chat = self._chat(chat_id)
        msg: JSON = {
            "message_id": self.next_message_id(chat_id),
            "from": self.bot_user,
            "chat": self._chat_obj(chat_id),
            "date": int(self.now()),
        }
        msg.update(content)
        if markup is not None:
            if "inline_keyboard" in markup:
                msg["reply_markup"] = markup
            elif "keyboard" in markup:
                chat.reply_keyboard = markup
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        return msg

    def _reply_to(self, chat_id: int, params: JSON, msg: JSON) -> None:
        reply = params.get("reply_parameters")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        if target is None:
            target = params.get("reply_to_message_id")
        if not isinstance(target, int):
            return
        chat = self._chat(chat_id)
        original: JSON | None = chat.user_messages.get(target)
        if original is None and target in chat.messages:
            original = chat.messages[target].raw
        if original is not None:
            msg["reply_to_message"] = {
                k: v for k, v in original.items() if k != "reply_to_message"
            }

    def _output(
        self,
        chat_id: int,
        method: str,
        params: JSON,
        raw: JSON,
        markup: JSON | None,
        *,
        edited: bool = False,
    ) -> SentMessage:
        """Keep what the chat now shows and wake whoever waits for the bot's next output."""
        text = raw.get("text", raw.get("caption"))
        sent = SentMessage(
            chat_id=chat_id,
            message_id=int(raw["message_id"]),
            text="" if text is None else str(text),
            reply_markup=markup,
            method=method,
            params=params,
            raw=raw,
            at=self.monotonic(),
            edited=edited,
        )
        chat = self._chat(chat_id)
        chat.messages[sent.message_id] = sent
        chat.outputs.append(sent)
        chat.log.append(("out", sent))
        chat.wake()
        return sent

    async def _m_send_message(self, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        text, entities = self._formatted(params, "text", limit=4096, required=True)
        markup = self._markup(params)
        content: JSON = {"text": text}
        if entities:
            content["entities"] = entities
        msg = self._new_message(chat_id, content, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, "sendMessage", params, msg, markup)
        return msg

    async def _m_send_location(self, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        location: JSON = {
            "latitude": as_float(params.get("latitude"), "latitude"),
            "longitude": as_float(params.get("longitude"), "longitude"),
        }
        for key in ("horizontal_accuracy", "live_period", "heading", "proximity_alert_radius"):
            if params.get(key) is not None:
                location[key] = params[key]
        markup = self._markup(params)
        msg = self._new_message(chat_id, {"location": location}, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, "sendLocation", params, msg, markup)
        return msg

    def _media_handler(self, name: str, kind: str) -> Callable[[JSON], Awaitable[JSON]]:
        async def handler(params: JSON) -> JSON:
            return self._send_media(name, kind, params)

        return handler

    def _send_media(self, name: str, kind: str, params: JSON) -> JSON:
        chat_id = self._require_chat(params)
        info = self._input_file(params.get(kind), kind)
        caption: str | None = None
        entities: list[JSON] = []
        if kind not in ("sticker", "video_note"):
            caption, entities = self._formatted(params, "caption", limit=1024, required=False)
        markup = self._markup(params)
        base = {"file_id": info["file_id"], "file_unique_id": info["file_unique_id"]}
        size = info["file_size"]
        media: Any
        if kind == "photo":
            media = [
                {**base, "width": 90, "height": 90, "file_size": min(size, 1000)},
                {**base, "width": 1280, "height": 960, "file_size": size},
            ]
        elif kind == "sticker":
            media = {
                **base,
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        else:
            media = {**base, "file_size": size}
            if kind in ("document", "video", "audio", "animation") and info.get("file_name"):
                media["file_name"] = info["file_name"]
            if info.get("mime_type") and kind != "video_note":
                media["mime_type"] = info["mime_type"]
            if kind in ("video", "audio", "voice", "animation", "video_note"):
                media["duration"] = as_int(params.get("duration"), 1)
            if kind in ("video", "animation"):
                media["width"] = as_int(params.get("width"), 640)
                media["height"] = as_int(params.get("height"), 480)
            if kind == "video_note":
                media["length"] = as_int(params.get("length"), 240)
        content: JSON = {kind: media}
        if caption is not None:
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        msg = self._new_message(chat_id, content, markup)
        self._reply_to(chat_id, params, msg)
        self._output(chat_id, name, params, msg, markup)
        return msg
