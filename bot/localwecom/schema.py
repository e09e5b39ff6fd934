"""What the local WeCom checks in a message/send, update_template_card or menu/create body,
written from WeCom's documents (Doc 90236, 94945, 90231) independently of Daka's own builders
(`handlers.wecom.cards`), so a mistake in those shows here.

Error codes are WeCom's global ones (Doc 90313) where WeCom names one; where it names none
(a bad card field, a reused task_id, a card without a callback URL, a spent response_code)
the fake answers 40058 不合法的参数, which Daka treats like any refusal."""

from __future__ import annotations

import re
from typing import Any, Final

from .records import JSON, ApiError

TEXT_BYTES: Final = 2048
MSGTYPES: Final = frozenset(
    {
        "text",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "markdown",
        "miniprogram_notice",
        "template_card",
    }
)
CARD_TYPES: Final = frozenset(
    {
        "text_notice",
        "news_notice",
        "button_interaction",
        "vote_interaction",
        "multiple_interaction",
    }
)
INTERACTIVE: Final = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
TASK_ID: Final = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
MENU_TYPES: Final = frozenset(
    {
        "click",
        "view",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "view_miniprogram",
    }
)
BAD_PARAM: Final = 40058


def bad(message: str) -> ApiError:
    return ApiError(BAD_PARAM, f"invalid parameter: {message}")


def check_content(msgtype: str, body: Any) -> tuple[JSON, bool]:
    """A message's object (`body[msgtype]`), checked; True when WeCom would cut its text."""
    if not isinstance(body, dict):
        raise bad(f"{msgtype} must be an object")
    if msgtype in ("text", "markdown"):
        content = body.get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(44004, "empty content")
        raw = content.encode()
        if len(raw) > TEXT_BYTES:  # WeCom cuts, it does not refuse (Doc 90236)
            cut = raw[:TEXT_BYTES].decode("utf-8", errors="ignore")
            return {**body, "content": cut}, True
        return body, False
    if msgtype in ("image", "voice", "video", "file"):
        if not isinstance(body.get("media_id"), str) or not body["media_id"]:
            raise ApiError(41006, "media_id missing")
        return body, False
    if msgtype == "template_card":
        check_card(body)
    return body, False


def check_card(card: JSON) -> None:
    """A template card's fields as Doc 90236 lists them for the types Daka sends."""
    card_type = card.get("card_type")
    if card_type not in CARD_TYPES:
        raise bad(f"card_type {card_type!r}")
    title = card.get("main_title")
    if card_type != "news_notice" and not (isinstance(title, dict) and title.get("title")):
        raise bad("main_title.title missing")
    if card_type in INTERACTIVE:
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
            raise bad("task_id must be 1-128 of 0-9 A-Z a-z _ - @")
    if card_type == "button_interaction":
        buttons = card.get("button_list")
        if not isinstance(buttons, list) or len(buttons) > 6:
            raise bad("button_list holds at most 6 buttons")
        _keys([b.get("key") if isinstance(b, dict) else None for b in buttons], 1024, "key")
        for button in buttons:
            if not button.get("text"):
                raise bad("a button needs text")
            if button.get("style", 1) not in (1, 2, 3, 4):
                raise bad("button style")
    elif card_type == "vote_interaction":
        # checkbox (required): question_key 1-1024 bytes; option_list 1-20 options, each id
        # 1-128 bytes and unique, text, is_checked; mode 0 (one) or 1 (several), default 0.
        box = card.get("checkbox")
        if not isinstance(box, dict):
            raise bad("checkbox missing")
        _keys([box.get("question_key")], 1024, "question_key")
        _options(box.get("option_list"), 20, checkable=True)
        mode = box.get("mode", 0)
        if isinstance(mode, bool) or mode not in (0, 1):
            raise bad("checkbox mode is 0 (single) or 1 (multiple)")
        _submit(card)
    elif card_type == "multiple_interaction":
        # select_list (required): 1-3 drop-downs, each a unique question_key, an optional title
        # and selected_id (a wrong one shows the first option), option_list 1-10 options.
        selects = card.get("select_list")
        if not isinstance(selects, list) or not 1 <= len(selects) <= 3:
            raise bad("select_list holds 1 to 3 selectors")
        _keys([s.get("question_key") if isinstance(s, dict) else None for s in selects], 1024, "q")
        for select in selects:
            for name in ("title", "selected_id"):
                if not isinstance(select.get(name, ""), str):
                    raise bad(f"select {name} must be a string")
            _options(select.get("option_list"), 10)
        _submit(card)


def check_menu(buttons: Any) -> list[JSON]:
    """menu/create's `button` list, with WeCom's own errcodes for each limit."""
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        raise ApiError(40016, "invalid button size")
    for entry in buttons:
        if not isinstance(entry, dict):
            raise ApiError(40017, "invalid button type")
        _menu_name(entry, 16, 40018)
        subs = entry.get("sub_button")
        if subs is None:
            _menu_button(entry, 40017, 40019)
            continue
        if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
            raise ApiError(40023, "invalid sub button size")
        for sub in subs:
            if not isinstance(sub, dict):
                raise ApiError(40024, "invalid sub button type")
            _menu_name(sub, 40, 40025)
            _menu_button(sub, 40024, 40026)
    return buttons


def _menu_name(entry: JSON, most: int, errcode: int) -> None:
    name = entry.get("name")
    if not isinstance(name, str) or not name or len(name.encode()) > most:
        raise ApiError(errcode, "invalid button name size")


def _menu_button(entry: JSON, type_code: int, key_code: int) -> None:
    if entry.get("type") not in MENU_TYPES:
        raise ApiError(type_code, "invalid button type")
    if entry["type"] != "view" and entry["type"] != "view_miniprogram":
        key = entry.get("key")
        if not isinstance(key, str) or not key or len(key.encode()) > 128:
            raise ApiError(key_code, "invalid button key size")


def _keys(keys: list[Any], most: int, what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        if not isinstance(key, str) or not key or len(key.encode()) > most:
            raise bad(f"{what} must be 1 to {most} bytes")
        if key in seen:
            raise bad(f"{what} {key!r} twice")
        seen.add(key)


def _options(options: Any, most: int, *, checkable: bool = False) -> None:
    if not isinstance(options, list) or not 1 <= len(options) <= most:
        raise bad(f"option_list holds 1 to {most} options")
    _keys([o.get("id") if isinstance(o, dict) else None for o in options], 128, "option id")
    for option in options:
        if not isinstance(option.get("text"), str) or not option["text"]:
            raise bad("an option needs text")
        if "is_checked" in option and not (checkable and isinstance(option["is_checked"], bool)):
            raise bad("is_checked is a vote card option's, true or false")


def _submit(card: JSON) -> None:
    """submit_button (required): its key 1-1024 bytes; its text may be left out (提交)."""
    submit = card.get("submit_button")
    if not isinstance(submit, dict):
        raise bad("submit_button missing")
    if not isinstance(submit.get("text", ""), str):
        raise bad("submit_button text must be a string")
    _keys([submit.get("key")], 1024, "submit key")
