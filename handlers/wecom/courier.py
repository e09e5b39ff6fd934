"""The WeCom courier: how the outbox's neutral letters become WeCom messages (message/send).

The text goes plain (`handlers.wecom.render`); the options as a button card, whose press comes
back to the conversation as the option's key (a reminder's "check in now" starts the check-in).
An organisation shown text only gets, instead, each option as a word to reply ("回复“打卡”"),
for the keys that have one: a number typed back would not know which letter it answered. What
WeCom answers is told back in the neutral outcomes (`handlers.wecom.errors`).

WeCom's limits (Doc 90454): per app and member 30 messages a minute and 1,000 an hour, the
excess dropped without an error; a card is one message, a long text and its card two."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

from domain.conversation.io import Option
from domain.delivery import Letter, Outcome, Pace, Refused, Windows
from domain.i18n import _
from domain.keys import CHECKIN_NOW
from handlers.wecom import render
from handlers.wecom.api import PER_MEMBER_PER_HOUR, PER_MEMBER_PER_MINUTE, WeComAPI
from handlers.wecom.menu import CHECK_IN
from handlers.wecom.messages import CHANNEL

SETTING_TTL: Final = 60.0  # seconds an organisation's text-only setting is trusted
WECOM_PACE: Final = Pace(
    rate_per_second=20.0,
    per_recipient_interval=1.0,
    per_recipient_per_minute=PER_MEMBER_PER_MINUTE,
    per_recipient_per_hour=PER_MEMBER_PER_HOUR,
)

TextOnly = Callable[[], Awaitable[bool]]


def reply_words() -> dict[str, str]:
    """Letter options a member answers by typing a word (the menu entry it stands for)."""
    return {CHECKIN_NOW: str(CHECK_IN)}


class WeComCourier:
    """Delivers letters addressed on the "wecom" channel (the address is the userid)."""

    channel = CHANNEL

    def __init__(
        self,
        api: WeComAPI,
        *,
        text_only: TextOnly | None = None,
        pace: Pace = WECOM_PACE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.pace = pace
        self._text_only = text_only
        self._monotonic = monotonic
        self._cached: tuple[float, bool] | None = None

    @property
    def recipients(self) -> Windows:
        """The app's count per member, which replies count in too: the sender keeps to it."""
        return self.api.recipients

    async def messages(self, letter: Letter) -> int:
        """How many messages `deliver` sends for the letter: two for a text too long for its
        card, and the card; one otherwise (a refused letter included)."""
        composed = _compose(letter)
        if isinstance(composed, Refused):
            return 1
        _, body, keys = composed
        card = keys and render.fits_buttons(keys) and not await self.text_only()
        return 2 if card and len(body) > render.CARD_TEXT else 1

    async def deliver(self, letter: Letter) -> Outcome:
        composed = _compose(letter)
        if isinstance(composed, Refused):
            return composed
        user, body, keys = composed
        if keys and render.fits_buttons(keys) and not await self.text_only():
            if len(body) > render.CARD_TEXT:  # two messages: see `messages`
                first = await self.api.send_text([user], body)
                if not first.sent:
                    return first.outcome
            card = render.card(render.new_task_id(), body, keys)
            return (await self.api.send_card([user], card)).outcome
        words = reply_words()
        lines = [
            _("Reply “{word}”: {label}").format(word=words[o.key], label=render.plain(o.label))
            for o in keys
            if o.key in words
        ]
        if lines:
            body = "\n\n".join([body, *lines])
        return (await self.api.send_text([user], body)).outcome

    async def text_only(self) -> bool:
        """The organisation's setting, asked again once it is a minute old."""
        if self._text_only is None:
            return False
        now = self._monotonic()
        if self._cached is None or now - self._cached[0] > SETTING_TTL:
            self._cached = (now, await self._text_only())
        return self._cached[1]


def _compose(letter: Letter) -> tuple[str, str, list[Option]] | Refused:
    """The letter's member, plain text (its links appended) and keyed options."""
    try:
        options = _options(letter.options)
    except (ValueError, TypeError, AttributeError) as exc:
        return Refused(f"not a letter WeCom can take: {exc}")
    user = letter.address.strip().lower()
    if not user or "|" in user:
        return Refused("a letter to no WeCom member")
    body = render.plain(letter.text)
    links = render.links(options)
    if links:
        body = f"{body}\n{links}"
    return user, body, render.keyed(options)


def _options(rows: Sequence[Sequence[Mapping[str, str]]] | None) -> list[list[Option]]:
    options = []
    for row in rows or []:
        converted = []
        for option in row:
            label = option.get("label")
            if not isinstance(label, str):
                raise ValueError(f"an option without a label: {option!r}")
            if "key" not in option and "url" not in option:
                raise ValueError(f"an option with neither a key nor a link: {option!r}")
            converted.append(Option(label, key=option.get("key"), url=option.get("url")))
        options.append(converted)
    return options
