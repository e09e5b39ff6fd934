"""Boxes ticked on the channel's side (a WeCom vote card, numbers typed together) and sent
with one press: each checked to be a key of the draft's question before the kind reads it."""

from __future__ import annotations

from domain.conversation.drafts import AnswerKey, Draft
from domain.conversation.keys import BadKey
from domain.kinds import AnswerError

MOST_CHOSEN = 64  # boxes sent with one press: more than any question has


def chosen_values(chosen: tuple[str, ...], draft: Draft, qid: str) -> tuple[str, ...]:
    """The values of the boxes sent with a press, each checked to be a key of this draft's
    question `qid` (the kind then checks the values are its options)."""
    if len(chosen) > MOST_CHOSEN:
        raise AnswerError("unknown_choice")
    values: list[str] = []
    for raw in chosen:
        try:
            key = AnswerKey.unpack(raw)
        except BadKey:
            raise AnswerError("unknown_choice") from None
        if key.draft != draft.id or key.q != qid:
            raise AnswerError("unknown_choice")
        values.append(key.value)
    return tuple(values)
