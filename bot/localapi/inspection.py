"""Reading what the bot did: its calls, each chat's messages and outputs, and waiting for them.

A test waits for the bot's *next* output in a chat (``next_reply``) the way a person watches a
chat: every send and every edit is one output, read in order through a per-chat cursor. The
web chat of ``daka demo`` reads the same outputs by index instead (``wait_outputs``). When a wait
times out, the error carries the chat's recent transcript.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from .records import JSON, Call, CallbackAnswer, SentMessage
from .state import ChatState, ServerState
from .updates import describe_update


class Inspection(ServerState):
    """count, calls_*, messages, outputs, transcript and the waits."""

    # ----------------------------------------------------------------- calls
    def count(self, method: str | None = None, *, ok_only: bool = False) -> int:
        """Number of calls of ``method`` (case-insensitive; None = all methods)."""
        counts = self._ok_counts if ok_only else self._counts
        if method is None:
            return sum(counts.values())
        return counts[self._canonical(method)]

    def calls_for(self, chat_id: int) -> list[Call]:
        chat = self._chats.get(chat_id)
        return list(chat.calls) if chat else []

    def calls_of(self, method: str) -> list[Call]:
        name = self._canonical(method)
        return [c for c in self.calls if c.method == name]

    # ----------------------------------------------------------------- chats
    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[SentMessage]:
        """Current state of every message the bot sent to ``chat_id`` (edits applied)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages.values() if include_deleted or not m.deleted]

    def message(self, chat_id: int, message_id: int) -> SentMessage:
        chat = self._chats.get(chat_id)
        found = chat.messages.get(message_id) if chat else None
        if found is None:
            raise AssertionError(f"bot message {message_id} not found in chat {chat_id}")
        return found

    def last_message(self, chat_id: int) -> SentMessage:
        shown = self.messages(chat_id)
        if not shown:
            raise AssertionError(f"the bot sent nothing to chat {chat_id}")
        return max(shown, key=lambda m: m.message_id)

    def outputs(self, chat_id: int) -> list[SentMessage]:
        """Every output event (sends and edits, as snapshots) for ``chat_id``, in order."""
        chat = self._chats.get(chat_id)
        return list(chat.outputs) if chat else []

    def user_messages(self, chat_id: int) -> list[JSON]:
        """What users sent in ``chat_id`` (as delivered to the bot), less what the bot deleted."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        gone = chat.deleted_user_messages
        return [m for mid, m in chat.user_messages.items() if mid not in gone]

    def callback_answers_for(self, chat_id: int) -> list[CallbackAnswer]:
        """The answers to this chat's button presses, in order."""
        chat = self._chats.get(chat_id)
        return list(chat.answers) if chat else []

    def reply_keyboard(self, chat_id: int) -> JSON | None:
        """The reply keyboard currently shown in the chat (None if removed / never sent)."""
        chat = self._chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    def transcript(self, chat_id: int) -> str:
        """Recent conversation in ``chat_id`` (for assertion messages)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return f"(no activity in chat {chat_id})"
        lines: list[str] = []
        for kind, item in chat.log:
            if kind == "in":
                lines.append(f"  user -> {describe_update(item)}")
            elif kind == "out":
                lines.append(f"  bot  <- {item.summary()}")
            elif kind == "answer":
                lines.append(f"  bot  <- answerCallbackQuery text={item.text!r}")
            elif kind == "delete":
                lines.append(f"  bot  <- deleteMessage #{item}")
            else:
                lines.append(f"  bot  x  {item.method} -> {item.status} {item.description}")
        read = chat.cursor
        lines.append(
            f"  ({read}/{len(chat.outputs)} outputs read; {self.pending_updates()} updates "
            f"pending, confirmed offset {self.confirmed_offset}, "
            f"last update_id {self.last_update_id})"
        )
        if self.webhook_url:
            lines.append(f"  ({self._webhook_state()})")
        return "\n".join(lines)

    # ----------------------------------------------------------------- waiting
    async def next_reply(self, chat_id: int, timeout: float = 30.0) -> SentMessage:  # noqa: ASYNC109
        """The next unread bot output (send or edit snapshot) in ``chat_id``."""
        chat = self._chat(chat_id)
        if chat.cursor >= len(chat.outputs):
            await self._wait_chat(
                chat, lambda: chat.cursor < len(chat.outputs), timeout, "a reply"
            )
        msg = chat.outputs[chat.cursor]
        chat.cursor += 1
        return msg

    async def wait_outputs(
        self,
        chat_id: int,
        since: int,
        timeout: float,  # noqa: ASYNC109
        *,
        answers_since: int = 0,
    ) -> tuple[list[SentMessage], list[CallbackAnswer]]:
        """Outputs and callback answers from these indexes on, waiting up to ``timeout`` for
        the first new one (a long poll; an empty result is no error). Leaves the cursor of
        ``next_reply`` alone."""
        chat = self._chat(chat_id)

        def ready() -> bool:
            return len(chat.outputs) > since or len(chat.answers) > answers_since

        deadline = self._loop_time() + timeout
        while not ready():
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                break
            await self._park(chat.waiters, remaining)
        return chat.outputs[since:], chat.answers[answers_since:]

    def drain(self, chat_id: int) -> list[SentMessage]:
        """Mark every output in ``chat_id`` as read and return the unread ones."""
        chat = self._chat(chat_id)
        unread = chat.outputs[chat.cursor :]
        chat.cursor = len(chat.outputs)
        return unread

    async def expect_no_reply(self, chat_id: int, within: float = 0.3) -> None:
        """Assert the bot sends/edits nothing more in ``chat_id`` for ``within`` seconds."""
        chat = self._chat(chat_id)
        with contextlib.suppress(AssertionError):
            await self._wait_chat(chat, lambda: chat.cursor < len(chat.outputs), within, "")
        if chat.cursor < len(chat.outputs):
            unexpected = chat.outputs[chat.cursor]
            raise AssertionError(
                f"unexpected bot output in chat {chat_id}: {unexpected.summary()}\n"
                + self.transcript(chat_id)
            )

    async def next_callback_answer(
        self,
        timeout: float = 30.0,  # noqa: ASYNC109  (a ceiling: under load a bot takes longer)
        *,
        chat_id: int | None = None,
    ) -> CallbackAnswer:
        """The next unread answerCallbackQuery (globally, or for one chat's presses)."""
        if chat_id is not None:
            chat = self._chat(chat_id)
            if chat.answer_cursor >= len(chat.answers):
                await self._wait_chat(
                    chat,
                    lambda: chat.answer_cursor < len(chat.answers),
                    timeout,
                    "answerCallbackQuery",
                )
            answer = chat.answers[chat.answer_cursor]
            chat.answer_cursor += 1
            return answer
        deadline = self._loop_time() + timeout
        while self._answer_cursor >= len(self.callback_answers):
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                raise AssertionError(
                    f"no answerCallbackQuery within {timeout}s "
                    f"({len(self.callback_answers)} answers so far)"
                )
            await self._park(self._answer_waiters, remaining)
        answer = self.callback_answers[self._answer_cursor]
        self._answer_cursor += 1
        return answer

    async def wait_for_call(
        self,
        method: str,
        *,
        chat_id: int | None = None,
        after: int = 0,
        timeout: float = 30.0,  # noqa: ASYNC109  (a ceiling: under load a bot takes longer)
    ) -> Call:
        """First call of ``method`` (optionally to ``chat_id``) at index >= ``after``."""
        name = self._canonical(method)
        source = self.calls if chat_id is None else self._chat(chat_id).calls
        index = after

        def scan() -> bool:
            nonlocal index
            while index < len(source):
                if source[index].method == name:
                    return True
                index += 1
            return False

        await self.wait_for(scan, timeout, f"{name} call (chat {chat_id})")
        return source[index]

    async def _wait_chat(
        self,
        chat: ChatState,
        ready: Callable[[], bool],
        timeout: float,  # noqa: ASYNC109
        what: str,
    ) -> None:
        deadline = self._loop_time() + timeout
        while not ready():
            remaining = deadline - self._loop_time()
            if remaining <= 0:
                raise AssertionError(
                    f"no {what} from the bot in chat {chat.chat_id} within {timeout}s; "
                    f"recent transcript:\n{self.transcript(chat.chat_id)}"
                )
            await self._park(chat.waiters, remaining)
