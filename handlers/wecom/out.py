"""The core's outputs for one WeCom member (`io.Out`), recorded as replies
(`handlers.wecom.replies`) that are sent after the turn commits.

- Text is plain (`handlers.wecom.render`); options go as a button card (up to 6), a
  choose-several question's boxes as a vote card (up to 20), or, for an organisation shown
  text only and for longer lists, as numbered lines. A number typed back after numbered lines
  is taken as the press of that option (after a button card it is what it says: a card's
  buttons are tapped, and an optional question's "Skip" must not swallow a typed 1); numbers
  typed back together ("1 3") after boxes, numbered or on a vote card (which the WeChat
  plug-in does not show), submit those boxes (`handlers.wecom.turns`). The options last shown
  are kept in the person's conversation state, under `SHOWN` (`Shown`), once the turn is over.
- `replace` and `update_options` change the card a click came from in place
  (update_template_card with the click's response_code, once); without one, what comes next is
  sent anew. A question that stays as it was (the consent notice, once answered) only loses
  its buttons.
- A card clicked that the turn did not change has its buttons replaced by the choice made
  (`finish`): each card's buttons answer once.
- `notice` shows nothing (WeCom has no toast), except an alert, sent as a text.
- Files are uploaded (media/upload) and sent; a file made later is made after the commit.
- `Ask.LOCATION` adds how to send a location (the 打卡 menu's picker, or a location message);
  a menu or a picker to take away means nothing here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from domain.conversation.io import Ask, Option, Options, State
from domain.i18n import _
from handlers.wecom import render, replies
from handlers.wecom.menu import CHECK_IN
from handlers.wecom.replies import Record

SHOWN: Final = "_wecom"  # the reserved key of the conversation state's data


@dataclass(frozen=True, slots=True)
class Shown:
    """The last message shown with options: the keys its numbers stand for (with their
    labels), the card it is (its task id and text, to redraw it), a fingerprint of its text,
    and whether it asked for a location (which a device's own report then answers)."""

    keys: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    task: str = ""
    body: str = ""
    digest: str = ""
    location: bool = False
    numbered: bool = False  # shown as numbered lines: a number typed back presses one
    submit: str = ""  # the key that submits the boxes among `keys` (a choose-several question)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Shown | None:
        """What the conversation state remembers (None: nothing, or nothing readable)."""
        kept = data.get(SHOWN)
        if not isinstance(kept, dict):
            return None
        try:
            return cls(
                keys=[str(k) for k in kept.get("keys", [])],
                labels=[str(label) for label in kept.get("labels", [])],
                task=str(kept.get("task", "")),
                body=str(kept.get("body", "")),
                digest=str(kept.get("digest", "")),
                location=bool(kept.get("location", False)),
                numbered=bool(kept.get("numbered", False)),
                submit=str(kept.get("submit", "")),
            )
        except (TypeError, AttributeError):
            return None

    def kept(self) -> dict[str, Any]:
        """What the conversation state keeps (`of` reads it back): `dataclasses.asdict`'s
        answer, built without its deep copy of every field at each turn."""
        return {
            "keys": list(self.keys),
            "labels": list(self.labels),
            "task": self.task,
            "body": self.body,
            "digest": self.digest,
            "location": self.location,
            "numbered": self.numbered,
            "submit": self.submit,
        }

    @property
    def empty(self) -> bool:
        return not self.keys and not self.location

    def key_of(self, number: int) -> str | None:
        """The key of option `number` (from 1), if there is one."""
        return self.keys[number - 1] if 1 <= number <= len(self.keys) else None

    def boxes_of(self, numbers: list[int]) -> tuple[str, ...] | None:
        """The keys of the boxes numbered `numbers` (the submit's own number left out); None
        when a number is not one shown or the options shown are not boxes."""
        if not self.submit:
            return None
        keys = [self.key_of(n) for n in numbers]
        if any(key is None for key in keys):
            return None
        return tuple(dict.fromkeys(k for k in keys if k is not None and k != self.submit))

    def label_of(self, key: str) -> str | None:
        try:
            return self.labels[self.keys.index(key)]
        except (ValueError, IndexError):
            return None


@dataclass(frozen=True, slots=True)
class Click:
    """A card button pressed: the card, the key, and the code that changes the card once."""

    task_id: str
    key: str
    response_code: str


def location_hint() -> str:
    return _(
        "Tap “{button}” in the menu below to pick your location, or send a location "
        "(+ → Location)."
    ).format(button=CHECK_IN)


class WeComOut:
    """`io.Out` for one member: `records` are what to send, `showing` what to remember."""

    def __init__(
        self, *, text_only: bool, shown: Shown | None = None, click: Click | None = None
    ) -> None:
        self.text_only = text_only
        self.shown = shown
        self.click = click
        self.records: list[Record] = []
        self.showing: Shown | None = None  # None: nothing said that changes what is shown
        self.asked_location = False
        self._code = click.response_code if click is not None else ""

    async def say(self, text: str, options: Options = (), *, ask: Ask | None = None) -> None:
        body = render.plain(text)
        location = ask is Ask.LOCATION
        if location:
            self.asked_location = True
            body = f"{body}\n{location_hint()}" if body else location_hint()
        self._show(body, options, location=location)

    async def replace(self, text: str, options: Options = ()) -> None:
        body, keys = render.plain(text), render.keyed(options)
        code, self._code = self._code, ""
        click = self.click
        if (
            code
            and click is not None
            and not self.text_only
            and not render.links(options)
            and render.fits_card(body, keys)
        ):  # the card clicked becomes what comes next
            card = render.card(click.task_id, body, keys)
            anew = render.card(render.new_task_id(), body, keys)
            self.records.append(
                replies.update(code, card=card, otherwise=[replies.send_card(anew)])
            )
            self.showing = _shown(keys, task=click.task_id, body=body)
            return
        if code:
            self.records.append(replies.update(code, replace_name=self._answered()))
        answered = self._answered_shown()
        if not keys and answered is not None and answered.digest == render.digest(body):
            self.showing = Shown()  # the question stays as it is; its buttons are gone
            return
        self._show(body, options)

    async def update_options(self, options: Options) -> None:
        keys = render.keyed(options)
        code, self._code = self._code, ""
        answered = self._answered_shown()
        body = answered.body if answered is not None else ""
        if (
            code
            and answered is not None
            and answered.task
            and not self.text_only
            and render.fits_card(body, keys)
        ):
            card = render.card(answered.task, body, keys)
            anew = render.card(render.new_task_id(), body, keys)
            self.records.append(
                replies.update(code, card=card, otherwise=[replies.send_card(anew)])
            )
            self.showing = _shown(keys, task=answered.task, body=body)
            return
        if len(body) > render.CARD_TEXT:
            body = ""
        self._show(body, options)

    async def notice(self, text: str = "", *, alert: bool = False) -> None:
        if alert and text:
            self.records.append(replies.text(render.plain(text)))

    async def file(
        self, name: str, data: bytes, *, caption: str = "", image: bool = False
    ) -> None:
        self.records.append(replies.file(name, data, image=image, caption=render.plain(caption)))
        self.showing = Shown()

    async def file_later(
        self,
        maker: str,
        args: Mapping[str, Any],
        name: str,
        failed: str,
        *,
        caption: str = "",
    ) -> None:
        record = replies.made(maker, args, name, render.plain(failed), render.plain(caption))
        self.records.append(record)
        self.showing = Shown()

    def finish(self) -> None:
        """The turn is over: a card clicked and not changed by it keeps no live buttons (they
        are one-shot, as the answer they gave is); its buttons become the choice made."""
        if self._code:
            self.records.insert(0, replies.update(self._code, replace_name=self._answered()))
            self._code = ""

    async def remember(self, state: State) -> None:
        """Keep what was shown last in the person's conversation state (at the end of the
        turn, after the core's own changes to it)."""
        if self.showing is None:
            return
        data = await state.get_data()
        kept = data.get(SHOWN)
        if self.showing.empty:
            if kept is None:
                return
            del data[SHOWN]
        else:
            data[SHOWN] = self.showing.kept()
        await state.set_data(data)

    def _update(self, code: str, task: str, body: str, keys: list[Option]) -> None:
        """The card clicked becomes `body` with `keys` (or, if WeCom refuses, a new one)."""
        card = render.card(task, body, keys)
        anew = replies.send_card(render.card(render.new_task_id(), body, keys))
        self.records.append(replies.update(code, card=card, otherwise=[anew]))
        self.showing = _shown(keys, task=task, body=body)

    def _show(self, body: str, options: Options, *, location: bool = False) -> None:
        keys = render.keyed(options)
        extra = render.links(options)
        if extra:
            body = f"{body}\n{extra}" if body else extra
        if not keys:
            if body:
                self.records.append(replies.text(body))
            self.showing = Shown(location=location)
            return
        if self.text_only or not render.fits_buttons(keys):
            numbers = render.numbered(keys)
            self.records.append(replies.text(f"{body}\n\n{numbers}" if body else numbers))
            self.showing = _shown(keys, body=body, location=location, numbered=True)
            return
        if len(body) > render.CARD_TEXT:
            self.records.append(replies.text(body))
        task = render.new_task_id()
        self.records.append(replies.send_card(render.card(task, body, keys)))
        self.showing = _shown(keys, task=task, body=body, location=location)

    def _answered_shown(self) -> Shown | None:
        """What the person answered: the card clicked when it is the one last shown, or the
        options last shown when they typed a number."""
        shown = self.shown
        if shown is None:
            return None
        if self.click is not None and self.click.task_id != shown.task:
            return None
        return shown

    def _answered(self) -> str:
        """What the clicked card's buttons become: the choice made."""
        label = None
        if self.click is not None and self.shown is not None:
            if self.shown.submit and self.click.key == self.shown.submit:
                return _("✔ Answered")  # a vote card's boxes, sent: not "✔ Done"
            label = self.shown.label_of(self.click.key)
        return f"✔ {label}" if label else _("✔ Answered")


def _shown(
    keys: list[Option],
    *,
    task: str = "",
    body: str = "",
    location: bool = False,
    numbered: bool = False,
) -> Shown:
    chosen = render.choosing(keys)
    return Shown(
        keys=[o.key or "" for o in keys],
        labels=[render.plain(o.label) for o in keys],
        task=task,
        body=body,
        digest=render.digest(body),
        location=location,
        numbered=numbered,
        submit=(chosen[1].key or "") if chosen is not None else "",
    )
