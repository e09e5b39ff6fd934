"""The core's light markup and options as WeCom shows them: plain text (WeCom's text messages
read only `<a href>` links, and the WeChat plug-in shows no markdown), options as a button card
(`button_interaction`, at most 6 buttons) or as numbered lines to answer with a number.

A choose-several question (boxes and the option that submits them, `io.Box`) is a vote card
(`vote_interaction`, checkbox mode 1: up to 20 options ticked in the client, sent together with
its submit button), not a multiple-choice card: `multiple_interaction` is up to 3 drop-downs,
each choosing one option, i.e. several single-choice questions at once (Doc 90236). Numbered,
its boxes may be ticked one number at a time or all at once ("1 3").

The core's texts escape what people typed (`html.escape`); here it is unescaped for reading,
with any "<" left in it made harmless, so that a name or an answer can never become a link in
a manager's chat."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from html.parser import HTMLParser
from typing import Any, Final

from domain.conversation.io import Option, Options
from domain.i18n import _
from handlers.wecom.cards import MAX_BUTTONS, MAX_OPTIONS, Button, Choice, button_card, vote_card

CARD_TEXT: Final = 160  # characters beneath a card's title (Doc 90236: 建议不超过160个字)
TITLE: Final = 36  # characters WeCom shows of a card's title (Doc 90236: 建议不超过36个字)
BUTTON: Final = 20  # characters kept of a button's text
CHOICE: Final = 17  # characters of a vote card's option (Doc 90236: 建议不超过17个字)
SHORT_LABEL: Final = 8  # options this short, three at most, are numbered on one line
QUOTE: Final = '"'


class _Plain(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._label = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            label, href = "".join(self._label), self._href.replace(QUOTE, "%22")
            self._href = None
            self.parts.append(f'<a href="{href}">{label}</a>' if href else label)

    def handle_data(self, data: str) -> None:
        safe = data.replace("<", "＜")
        (self._label if self._href is not None else self.parts).append(safe)


def plain(text: str) -> str:
    """Light markup as a WeCom text: tags dropped (links kept as links), entities read. A text
    with neither a tag nor an entity (most of them) is as it is: no parser for it."""
    if "<" not in text and "&" not in text:
        return text.strip()
    parser = _Plain()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts).strip()


def keyed(options: Options) -> list[Option]:
    """The options a press answers (those with a key), row after row."""
    return [o for row in options for o in row if o.key is not None]


def links(options: Options) -> str:
    """The options that are links, as lines of text."""
    return "\n".join(
        f'<a href="{o.url.replace(QUOTE, "%22")}">{plain(o.label)}</a>'
        for row in options
        for o in row
        if o.url is not None and o.key is None
    )


def numbered(options: Sequence[Option]) -> str:
    """Options to answer with their number: "回复 1 是 / 2 否", or one a line (boxes with how
    to tick several at once)."""
    labels = [plain(o.label) for o in options]
    if len(labels) <= 3 and all(len(label) <= SHORT_LABEL for label in labels):
        choices = " / ".join(f"{n} {label}" for n, label in enumerate(labels, start=1))
        lines = [_("Reply {choices}").format(choices=choices)]
    else:
        lines = [_("Reply with a number:")]
        lines += [f"{n}. {label}" for n, label in enumerate(labels, start=1)]
    if choosing(options) is not None:
        lines.append(_("Or reply with every number that applies at once, e.g. “1 3”."))
    return "\n".join(lines)


def choosing(options: Sequence[Option]) -> tuple[list[Option], Option] | None:
    """The boxes of a choose-several question and the option that submits them; None when
    the options are not one (buttons of their own)."""
    boxes = [o for o in options if o.box is not None and o.key]
    submits = [o for o in options if o.submit and o.key and o.box is None]
    if not boxes or len(submits) != 1 or len(boxes) + 1 != len(options):
        return None
    return boxes, submits[0]


def fits_card(body: str, options: Sequence[Option]) -> bool:
    """Whether a text and its options go as one card (a button or a vote card)."""
    return fits_buttons(options) and len(body) <= CARD_TEXT


def fits_buttons(options: Sequence[Option]) -> bool:
    chosen = choosing(options)
    if chosen is not None:
        return len(chosen[0]) <= MAX_OPTIONS
    return 1 <= len(options) <= MAX_BUTTONS


def card(task_id: str, body: str, options: Sequence[Option]) -> dict[str, Any]:
    """A button card, or a vote card for a choose-several question: the text's first line as
    its title, the rest beneath it; a text too long for a card goes before it in a message of
    its own (then the card has only a title)."""
    first, _newline, rest = body.strip().partition("\n")
    title = first.strip() or _("Please choose:")
    if len(title) > TITLE:
        title, rest = title[: TITLE - 1] + "…", body.strip()
    if len(body.strip()) > CARD_TEXT:  # said in a text message just before
        rest = ""
    chosen = choosing(options)
    if chosen is not None:
        boxes, submit = chosen
        return vote_card(
            task_id=task_id,
            title=title,
            desc=rest.strip(),
            question_key=submit.key or "",
            options=[
                Choice(o.key or "", _cut(plain(o.box.text), CHOICE), o.box.ticked)
                for o in boxes
                if o.box is not None
            ],
            submit=Button(_cut(plain(submit.label), BUTTON), submit.key or ""),
            multi=True,
        )
    buttons = [Button(_cut(plain(o.label), BUTTON), o.key or "") for o in options]
    return button_card(task_id=task_id, title=title, buttons=buttons, sub_title=rest.strip())


def new_task_id() -> str:
    """A card's task id: unique for ever within the app (WeCom refuses one used before)."""
    return "dk" + secrets.token_hex(15)


def digest(text: str) -> str:
    """A short fingerprint of a text, to know the same question when it is shown again."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cut(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
