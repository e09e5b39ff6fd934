"""Neutral inputs and outputs of the conversation core (the ports every channel adapter fills).

Texts use light markup: the HTML subset `<b>`, `<i>`, `<code>`, `<a href>` with everything else
escaped (`html.escape`); a channel without markup strips the tags. Options are rows of buttons:
each has a label and either an opaque `key` (sent back as `Press(key)`: untrusted, the core
unpacks and re-authorises it) or a `url`. A channel without buttons shows them numbered and
accepts the number as the press.

A choose-several question's options are boxes (`Option.box`) and one option that submits them
(`Option.submit`). A channel with checkboxes of its own (WeCom's vote card) draws them and sends
the boxes ticked with the submit's press (`Press.chosen`); one without (Telegram) shows each box
as a button that toggles it, its label drawing the box."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Person:
    """Who wrote, as their channel names them; `language` is the channel's hint ("zh", "en")."""

    channel: str
    external_id: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """`/name args` (or a channel's menu entry mapped to a command). `attached` is what the
    command came on, where a channel lets one ride on something else (Telegram: the caption of
    a photo or file): a conversation state that does not take the command gets that instead."""

    name: str
    args: str = ""
    attached: Text | Location | Photo | Document | None = None


@dataclass(frozen=True, slots=True)
class Text:
    """Typed text; empty: something the core has no input for (a sticker, a voice note), which
    the question asked answers by asking again."""

    text: str


@dataclass(frozen=True, slots=True)
class Location:
    latitude: float
    longitude: float
    accuracy: float | None = None  # metres, when the channel says
    live: bool = False
    forwarded: bool = False  # False also where the channel cannot tell (say so to managers)
    label: str | None = None  # a place name the channel gives with the pick


@dataclass(frozen=True, slots=True)
class Photo:
    ref: str  # the channel's reference to fetch it by (Telegram file_id, WeCom media_id)
    forwarded: bool = False


@dataclass(frozen=True, slots=True)
class Document:
    ref: str
    name: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Press:
    """A button pressed (or its number typed): the option's key, as the client sent it.
    `chosen`: when the press submits boxes the channel ticked on its side (a WeCom vote card,
    several numbers typed at once), the keys of every box ticked, as the client sent them
    (untrusted like `key`); None for a plain press."""

    key: str
    chosen: tuple[str, ...] | None = None


Input = Command | Text | Location | Photo | Document | Press


@dataclass(frozen=True, slots=True)
class Box:
    """A checkbox of a choose-several question: the option's own text (the label draws the box
    for channels that show it as a button) and whether it is ticked now."""

    text: str
    ticked: bool


@dataclass(frozen=True, slots=True)
class Option:
    label: str
    key: str | None = None
    url: str | None = None
    box: Box | None = None  # a checkbox: its key toggles it
    submit: bool = False  # submits the boxes beside it (pressed with `Press.chosen`)


Options = Sequence[Sequence[Option]]


class Ask(Enum):
    """What the channel should offer its own picker for, beside the text."""

    LOCATION = "location"
    PHOTO = "photo"
    MENU = "menu"  # the member's standing menu (check in / today / history)
    CLEAR = "clear"  # take away a picker or menu the channel still shows


class Out(Protocol):
    """Where the core's answers go; each channel renders them its way."""

    async def say(self, text: str, options: Options = (), *, ask: Ask | None = None) -> None:
        """A new message."""

    async def replace(self, text: str, options: Options = ()) -> None:
        """Replace the question the person just answered (a channel that cannot edit sends it
        anew)."""

    async def update_options(self, options: Options) -> None:
        """Change only the options under the question just answered (a ticked box), keeping
        its text; a channel that cannot edit does nothing."""

    async def notice(self, text: str = "", *, alert: bool = False) -> None:
        """The small answer to a press (Telegram's toast); empty: just acknowledge it."""

    async def file(
        self, name: str, data: bytes, *, caption: str = "", image: bool = False
    ) -> None:
        """A document, or a picture when `image`."""

    async def file_later(
        self,
        maker: str,
        args: Mapping[str, Any],
        name: str,
        failed: str,
        *,
        caption: str = "",
    ) -> None:
        """A document made after this turn is committed, away from the conversation (it may take
        seconds: an export), by the maker named `maker` in `storage.makers.MAKERS` from JSON
        `args`; `{rows}` in `caption` becomes the number of rows it holds, and `failed` is said
        instead when it cannot be made."""


@dataclass(slots=True)
class Said:
    """One thing the core said, as `CollectingOut` keeps it."""

    how: str  # "say", "replace", "update_options", "notice", "file", "file_later"
    text: str
    options: list[list[Option]] = field(default_factory=list)
    ask: Ask | None = None
    alert: bool = False
    name: str | None = None
    data: bytes | None = None
    image: bool = False
    maker: str | None = None  # a file made later: by whom, from what, and what if it cannot be
    args: dict[str, Any] | None = None
    failed: str | None = None

    def labels(self) -> list[str]:
        return [option.label for row in self.options for option in row]

    def keys(self) -> list[str]:
        return [option.key for row in self.options for option in row if option.key is not None]


class CollectingOut:
    """Keeps everything said, for tests of the core (no channel, no HTTP)."""

    def __init__(self) -> None:
        self.said: list[Said] = []

    async def say(self, text: str, options: Options = (), *, ask: Ask | None = None) -> None:
        self.said.append(Said("say", text, [list(row) for row in options], ask=ask))

    async def replace(self, text: str, options: Options = ()) -> None:
        self.said.append(Said("replace", text, [list(row) for row in options]))

    async def update_options(self, options: Options) -> None:
        self.said.append(Said("update_options", "", [list(row) for row in options]))

    async def notice(self, text: str = "", *, alert: bool = False) -> None:
        self.said.append(Said("notice", text, alert=alert))

    async def file(
        self, name: str, data: bytes, *, caption: str = "", image: bool = False
    ) -> None:
        self.said.append(Said("file", caption, name=name, data=data, image=image))

    async def file_later(
        self,
        maker: str,
        args: Mapping[str, Any],
        name: str,
        failed: str,
        *,
        caption: str = "",
    ) -> None:
        self.said.append(
            Said("file_later", caption, name=name, maker=maker, args=dict(args), failed=failed)
        )

    def texts(self) -> list[str]:
        return [said.text for said in self.said]

    def take(self) -> list[Said]:
        """What was said since the last take."""
        said, self.said = self.said, []
        return said


class State(Protocol):
    """A person's conversation state: a state name and a little data, kept by the channel's
    storage (database or Redis); aiogram's `FSMContext` is one."""

    async def get_state(self) -> str | None: ...

    async def set_state(self, state: Any = None) -> None: ...

    async def get_data(self) -> dict[str, Any]: ...

    async def set_data(self, data: dict[str, Any]) -> None: ...

    async def update_data(
        self, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]: ...

    async def clear(self) -> None: ...


class MemoryState:
    """`State` in a dict, for tests of the core."""

    def __init__(self) -> None:
        self.state: str | None = None
        self.data: dict[str, Any] = {}

    async def get_state(self) -> str | None:
        return self.state

    async def set_state(self, state: Any = None) -> None:
        self.state = getattr(state, "state", state)

    async def get_data(self) -> dict[str, Any]:
        return dict(self.data)

    async def set_data(self, data: dict[str, Any]) -> None:
        self.data = dict(data)

    async def update_data(
        self, data: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        self.data.update(data or {}, **kwargs)
        return dict(self.data)

    async def clear(self) -> None:
        self.state = None
        self.data = {}
