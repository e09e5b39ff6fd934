"""Callback payloads as WeCom writes them (plaintext XML before encryption), one factory per
message and event Daka reads (Doc 90239 消息格式, Doc 90240 事件格式, location_select and
template_card_event as in WeCom's samples)."""

from __future__ import annotations

from collections.abc import Sequence


def cdata(value: object) -> str:
    """`value` in a CDATA section ("]]>" inside it split, as XML requires)."""
    return "<![CDATA[" + str(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _head(corp_id: str, user: str, created: int, msg_type: str) -> str:
    return (
        f"<ToUserName>{cdata(corp_id)}</ToUserName>"
        f"<FromUserName>{cdata(user)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime>"
        f"<MsgType>{cdata(msg_type)}</MsgType>"
    )


def _tail(agent_id: int) -> str:
    return f"<AgentID>{agent_id}</AgentID></xml>"


def text(corp_id: str, agent_id: int, user: str, created: int, content: str, msg_id: str) -> str:
    return (
        f"<xml>{_head(corp_id, user, created, 'text')}<Content>{cdata(content)}</Content>"
        f"<MsgId>{msg_id}</MsgId>{_tail(agent_id)}"
    )


def image(
    corp_id: str, agent_id: int, user: str, created: int, media_id: str, msg_id: str, pic_url: str
) -> str:
    return (
        f"<xml>{_head(corp_id, user, created, 'image')}<PicUrl>{cdata(pic_url)}</PicUrl>"
        f"<MediaId>{cdata(media_id)}</MediaId><MsgId>{msg_id}</MsgId>{_tail(agent_id)}"
    )


def location(
    corp_id: str,
    agent_id: int,
    user: str,
    created: int,
    latitude: float,
    longitude: float,
    label: str,
    msg_id: str,
    scale: int = 15,
) -> str:
    return (
        f"<xml>{_head(corp_id, user, created, 'location')}"
        f"<Location_X>{latitude}</Location_X><Location_Y>{longitude}</Location_Y>"
        f"<Scale>{scale}</Scale><Label>{cdata(label)}</Label>"
        f"<MsgId>{msg_id}</MsgId>{_tail(agent_id)}"
    )


def event(corp_id: str, agent_id: int, user: str, created: int, name: str, inner: str) -> str:
    return (
        f"<xml>{_head(corp_id, user, created, 'event')}<Event>{cdata(name)}</Event>"
        f"{inner}{_tail(agent_id)}"
    )


def location_report(
    corp_id: str,
    agent_id: int,
    user: str,
    created: int,
    latitude: float,
    longitude: float,
    precision: float,
) -> str:
    inner = (
        f"<Latitude>{latitude}</Latitude><Longitude>{longitude}</Longitude>"
        f"<Precision>{precision}</Precision>"
    )
    return event(corp_id, agent_id, user, created, "LOCATION", inner)


def location_select(
    corp_id: str,
    agent_id: int,
    user: str,
    created: int,
    key: str,
    latitude: float,
    longitude: float,
    label: str,
    poiname: str = "",
    scale: int = 15,
) -> str:
    inner = (
        f"<EventKey>{cdata(key)}</EventKey><SendLocationInfo>"
        f"<Location_X>{cdata(latitude)}</Location_X><Location_Y>{cdata(longitude)}</Location_Y>"
        f"<Scale>{cdata(scale)}</Scale><Label>{cdata(label)}</Label>"
        f"<Poiname>{cdata(poiname)}</Poiname></SendLocationInfo>"
    )
    return event(corp_id, agent_id, user, created, "location_select", inner)


def click(corp_id: str, agent_id: int, user: str, created: int, key: str) -> str:
    return event(corp_id, agent_id, user, created, "click", f"<EventKey>{cdata(key)}</EventKey>")


def enter_agent(corp_id: str, agent_id: int, user: str, created: int) -> str:
    return event(
        corp_id, agent_id, user, created, "enter_agent", f"<EventKey>{cdata('')}</EventKey>"
    )


def card_event(
    corp_id: str,
    agent_id: int,
    user: str,
    created: int,
    key: str,
    task_id: str,
    card_type: str,
    response_code: str,
    selected: Sequence[tuple[str, Sequence[str]]] = (),
) -> str:
    items = "".join(
        f"<SelectedItem><QuestionKey>{cdata(question)}</QuestionKey><OptionIds>"
        + "".join(f"<OptionId>{cdata(option)}</OptionId>" for option in options)
        + "</OptionIds></SelectedItem>"
        for question, options in selected
    )
    inner = (
        f"<EventKey>{cdata(key)}</EventKey><TaskId>{cdata(task_id)}</TaskId>"
        f"<CardType>{cdata(card_type)}</CardType><ResponseCode>{cdata(response_code)}</ResponseCode>"
        + (f"<SelectedItems>{items}</SelectedItems>" if items else "")
    )
    return event(corp_id, agent_id, user, created, "template_card_event", inner)
