"""After a button press: answerCallbackQuery, the editMessage* methods and deleteMessage.

An edit is an output of its own (a snapshot of the message as it now looks), so a test reads
edits in order with the sends; an edit that changes nothing fails with Telegram's "message is
not modified", which a bot must handle.
"""

from __future__ import annotations

from dataclasses import replace

from .messages import MessageMethods
from .params import as_int, bad
from .records import JSON, CallbackAnswer, SentMessage


class EditMethods(MessageMethods):
    """Edits, deletes and callback answers."""

    def _editable(self, params: JSON) -> tuple[int, SentMessage]:
        if params.get("inline_message_id"):
            raise bad("inline messages are not supported by the local Bot API")
        chat_id = self._require_chat(params)
        message_id = as_int(params.get("message_id"))
        chat = self._chats.get(chat_id)
        current = chat.messages.get(message_id) if chat else None
        if current is None or current.deleted:
            if chat is not None and message_id in chat.user_messages:
                raise bad("message can't be edited")
            raise bad("message to edit not found")
        return chat_id, current

    def _apply_edit(
        self,
        method: str,
        params: JSON,
        chat_id: int,
        current: SentMessage,
        changes: JSON,
        markup: JSON | None,
    ) -> JSON:
        raw = dict(current.raw)
        for key, value in changes.items():
            if value is None or value == []:
                raw.pop(key, None)
            else:
                raw[key] = value
        if markup is None:
            raw.pop("reply_markup", None)
        else:
            raw["reply_markup"] = markup
        if raw == current.raw:
            raise bad(
                "message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message"
            )
        raw["edit_date"] = int(self.now())
        self._output(chat_id, method, params, raw, markup, edited=True)
        return raw

    async def _m_edit_message_text(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        if "text" not in current.raw:
            raise bad("there is no text in the message to edit")
        text, entities = self._formatted(params, "text", limit=4096, required=True)
        markup = self._markup(params, inline_only=True)
        changes: JSON = {"text": text, "entities": entities}
        return self._apply_edit("editMessageText", params, chat_id, current, changes, markup)

    async def _m_edit_message_caption(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        if "text" in current.raw or "location" in current.raw:
            raise bad("there is no caption in the message to edit")
        caption, entities = self._formatted(params, "caption", limit=1024, required=False)
        markup = self._markup(params, inline_only=True)
        changes: JSON = {"caption": caption, "caption_entities": entities}
        return self._apply_edit("editMessageCaption", params, chat_id, current, changes, markup)

    async def _m_edit_message_reply_markup(self, params: JSON) -> JSON:
        chat_id, current = self._editable(params)
        markup = self._markup(params, inline_only=True)
        return self._apply_edit("editMessageReplyMarkup", params, chat_id, current, {}, markup)

    async def _m_delete_message(self, params: JSON) -> bool:
        chat_id = self._require_chat(params)
        message_id = as_int(params.get("message_id"))
        chat = self._chat(chat_id)
        current = chat.messages.get(message_id)
        if current is not None and not current.deleted:
            chat.messages[message_id] = replace(current, deleted=True)
        elif message_id in chat.user_messages and message_id not in chat.deleted_user_messages:
            chat.deleted_user_messages.add(message_id)
        else:
            raise bad("message to delete not found")
        chat.log.append(("delete", message_id))
        return True

    async def _m_answer_callback_query(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._callback_chats:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        text = params.get("text")
        if text is not None and len(str(text)) > 200:
            raise bad("MESSAGE_TOO_LONG")
        chat_id = self._callback_chats[query_id]
        cache_time = params.get("cache_time")
        answer = CallbackAnswer(
            callback_query_id=query_id,
            text="" if text is None else str(text),
            show_alert=bool(params.get("show_alert")),
            url=params.get("url"),
            cache_time=None if cache_time is None else as_int(cache_time),
            chat_id=chat_id,
            params=params,
            at=self.monotonic(),
        )
        self.callback_answers.append(answer)
        if self._answer_waiters:
            for fut in self._answer_waiters:
                if not fut.done():
                    fut.set_result(None)
            self._answer_waiters.clear()
        if chat_id is not None:
            chat = self._chat(chat_id)
            chat.answers.append(answer)
            chat.log.append(("answer", answer))
            chat.wake()
        return True
