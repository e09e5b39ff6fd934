"""What a member did in the WeCom app, read from a decrypted callback (Doc 90239 消息格式,
Doc 90240 事件格式) into typed events, and from those into the core's neutral inputs.

Each event knows its dedupe key: WeCom retries a callback it got no 200 for (5 s, 3 tries in
all), with the same MsgId for messages and the same FromUserName + CreateTime for events. A
message type or event Daka has no use for is `Unsupported`, not an error: the core answers it
like a Telegram sticker."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element

from domain.conversation import io
from handlers.wecom.crypto import BadPayload, parse_xml

CHANNEL: Final = "wecom"
CHOOSING_CARDS: Final = frozenset({"vote_interaction", "multiple_interaction"})


class BadMessage(BadPayload):
    """Decrypted, but not a message WeCom would send: a required field missing or unreadable."""


@dataclass(frozen=True, slots=True)
class Inbound:
    """Who did it, in which app, when (seconds since the epoch, WeCom's CreateTime)."""

    user: str
    agent_id: int | None
    created: int


@dataclass(frozen=True, slots=True)
class TextMessage(Inbound):
    content: str
    msg_id: str


@dataclass(frozen=True, slots=True)
class ImageMessage(Inbound):
    pic_url: str
    media_id: str  # fetch with media/get (valid 3 days)
    msg_id: str


@dataclass(frozen=True, slots=True)
class LocationMessage(Inbound):
    """A location sent in the chat (the member may move the pin before sending it)."""

    latitude: float  # Location_X
    longitude: float  # Location_Y
    scale: int | None  # the map's zoom, not an accuracy
    label: str
    msg_id: str


@dataclass(frozen=True, slots=True)
class LocationReport(Inbound):
    """Event LOCATION (上报地理位置): the device's own report on entering the app, or every 5 s
    inside it, when the app's switch is on and the member agreed."""

    latitude: float
    longitude: float
    precision: float | None


@dataclass(frozen=True, slots=True)
class LocationPicked(Inbound):
    """Event location_select: a place chosen in the picker a menu button opened."""

    event_key: str
    latitude: float
    longitude: float
    scale: int | None
    label: str
    poiname: str


@dataclass(frozen=True, slots=True)
class MenuClick(Inbound):
    """Event click: a menu button of type click; its key is set by menu/create."""

    event_key: str


@dataclass(frozen=True, slots=True)
class EnterAgent(Inbound):
    """Event enter_agent: the member opened the app."""


@dataclass(frozen=True, slots=True)
class Selected:
    """One question of a vote or multiple-choice card and the option ids chosen."""

    question_key: str
    option_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CardPressed(Inbound):
    """Event template_card_event: a card button (or a vote/choice card's submit) pressed.
    `response_code` updates that card once (message/update_template_card, 72 h)."""

    event_key: str
    task_id: str
    card_type: str
    response_code: str
    selected: tuple[Selected, ...] = ()


@dataclass(frozen=True, slots=True)
class Unsupported(Inbound):
    """A message type (voice, video, file, link…) or an event Daka does not use."""

    msg_type: str
    event: str
    msg_id: str


Event = (
    TextMessage
    | ImageMessage
    | LocationMessage
    | LocationReport
    | LocationPicked
    | MenuClick
    | EnterAgent
    | CardPressed
    | Unsupported
)


def parse(xml: bytes | str) -> Event:
    """A decrypted callback as its typed event; BadMessage if it is not one WeCom sends."""
    root = parse_xml(xml)
    msg_type = _text(root, "MsgType").lower()
    who = _required(root, "FromUserName"), _agent_id(root), _int(root, "CreateTime")
    if msg_type == "event":
        return _event(root, *who)
    msg_id = _required(root, "MsgId")
    if msg_type == "text":
        return TextMessage(*who, content=_text(root, "Content"), msg_id=msg_id)
    if msg_type == "image":
        return ImageMessage(
            *who,
            pic_url=_text(root, "PicUrl"),
            media_id=_required(root, "MediaId"),
            msg_id=msg_id,
        )
    if msg_type == "location":
        return LocationMessage(
            *who,
            latitude=_degrees(root, "Location_X"),
            longitude=_degrees(root, "Location_Y"),
            scale=_optional_int(root, "Scale"),
            label=_text(root, "Label"),
            msg_id=msg_id,
        )
    return Unsupported(*who, msg_type=msg_type, event="", msg_id=msg_id)


def _event(root: Element, user: str, agent_id: int | None, created: int) -> Event:
    name = _text(root, "Event")
    event = name.lower()  # WeCom writes LOCATION and click; older docs CLICK
    if event == "location":
        return LocationReport(
            user,
            agent_id,
            created,
            latitude=_degrees(root, "Latitude"),
            longitude=_degrees(root, "Longitude"),
            precision=_optional_float(root, "Precision"),
        )
    if event == "location_select":
        info = root.find("SendLocationInfo")
        if info is None:
            raise BadMessage("location_select without SendLocationInfo")
        return LocationPicked(
            user,
            agent_id,
            created,
            event_key=_text(root, "EventKey"),
            latitude=_degrees(info, "Location_X"),
            longitude=_degrees(info, "Location_Y"),
            scale=_optional_int(info, "Scale"),
            label=_text(info, "Label").strip(),
            poiname=_text(info, "Poiname").strip(),
        )
    if event == "click":
        return MenuClick(user, agent_id, created, event_key=_text(root, "EventKey"))
    if event == "enter_agent":
        return EnterAgent(user, agent_id, created)
    if event == "template_card_event":
        return CardPressed(
            user,
            agent_id,
            created,
            event_key=_text(root, "EventKey"),
            task_id=_text(root, "TaskId"),
            card_type=_text(root, "CardType"),
            response_code=_text(root, "ResponseCode"),
            selected=tuple(
                Selected(
                    question_key=_text(item, "QuestionKey"),
                    option_ids=tuple(o.text or "" for o in item.iterfind("OptionIds/OptionId")),
                )
                for item in root.iterfind("SelectedItems/SelectedItem")
            ),
        )
    return Unsupported(user, agent_id, created, msg_type="event", event=name, msg_id="")


def dedupe_key(event: Event) -> str:
    """The same for WeCom's retries of one callback, different for two callbacks: MsgId for
    messages; FromUserName, CreateTime, the event and its stable keys (a card's task, key
    and options ticked) for events."""
    msg_id = getattr(event, "msg_id", "")
    if msg_id:
        return f"msg:{msg_id}"
    name = type(event).__name__
    if isinstance(event, Unsupported):
        name = f"{name}:{event.event}"
    parts = [name, event.user, str(event.created)]
    if isinstance(event, LocationPicked | MenuClick):
        parts.append(event.event_key)
    elif isinstance(event, CardPressed):
        parts += [event.task_id, event.event_key]
        # Two submits of a card within a second differ by what was ticked; a retry does not.
        parts += [f"{item.question_key}={','.join(item.option_ids)}" for item in event.selected]
    return "event:" + "\x1f".join(parts)


def to_input(event: Event) -> io.Input | None:
    """The core's neutral input for an event; None for one that asks nothing of the core
    (entering the app, an unsupported event). Forwarding cannot be seen on WeCom, so no input
    is ever `forwarded` (docs/wecom.md). A vote or multiple-choice card's submit is a press
    of its key with the option ids ticked (`Press.chosen`: every question's, in order, once
    each; none ticked is an empty selection), untrusted like any key: the core checks them."""
    if isinstance(event, TextMessage):
        text = event.content.strip()
        if text.startswith("/"):
            name, _space, args = text[1:].partition(" ")
            return io.Command(name, args.strip())
        return io.Text(event.content)
    if isinstance(event, ImageMessage):
        return io.Photo(ref=event.media_id, forwarded=False)
    if isinstance(event, LocationMessage):
        return io.Location(
            event.latitude, event.longitude, forwarded=False, label=event.label or None
        )
    if isinstance(event, LocationPicked):
        return io.Location(
            event.latitude,
            event.longitude,
            forwarded=False,
            label=event.label or event.poiname or None,
        )
    if isinstance(event, LocationReport):
        # Reported by the device itself, like a Telegram live location, with its precision.
        return io.Location(
            event.latitude, event.longitude, accuracy=event.precision, live=True, forwarded=False
        )
    if isinstance(event, MenuClick):
        name, _space, args = event.event_key.strip().removeprefix("/").partition(" ")
        return io.Command(name, args.strip()) if name else None
    if isinstance(event, CardPressed):
        if event.card_type in CHOOSING_CARDS:  # ticked in the client, sent with the submit
            chosen = (oid for item in event.selected for oid in item.option_ids)
            return io.Press(event.event_key, chosen=tuple(dict.fromkeys(chosen)))
        return io.Press(event.event_key)
    if isinstance(event, Unsupported) and event.msg_type != "event":
        return io.Text("")  # the question asks again for what it needs
    return None


def person_of(event: Event) -> io.Person:
    """Who wrote, as the core names people: the WeCom userid (case-insensitive: lower-cased, as
    WeCom's own answers give it)."""
    return io.Person(CHANNEL, event.user.lower())


def _text(root: Element, tag: str) -> str:
    return root.findtext(tag) or ""


def _required(root: Element, tag: str) -> str:
    value = _text(root, tag).strip()
    if not value:
        raise BadMessage(f"no {tag}")
    return value


def _agent_id(root: Element) -> int | None:
    value = _text(root, "AgentID").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BadMessage("AgentID is not a number")
    return int(value)


def _int(root: Element, tag: str) -> int:
    value = _required(root, tag)
    if not value.isdigit() or len(value) > 12:
        raise BadMessage(f"{tag} is not a time")
    return int(value)


def _optional_int(root: Element, tag: str) -> int | None:
    value = _text(root, tag).strip()
    return int(value) if value.isdigit() and len(value) <= 6 else None


def _optional_float(root: Element, tag: str) -> float | None:
    value = _text(root, tag).strip()
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _degrees(root: Element, tag: str) -> float:
    """A coordinate as a finite number; whether it is on Earth is the core's question (it
    answers the member), not a reason to refuse the callback."""
    value = _required(root, tag)
    try:
        number = float(value)
    except ValueError:
        raise BadMessage(f"{tag} is not a number") from None
    if not math.isfinite(number):
        raise BadMessage(f"{tag} is not a finite number")
    return number
