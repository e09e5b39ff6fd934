"""Template cards and menu buttons as WeCom's message/send and menu/create take them (Doc 90236
模板卡片消息, Doc 90231 创建菜单), checked against WeCom's documented limits here, where a
mistake is a bug to see, rather than as an errcode from WeCom.

Only button, vote and multiple-choice cards call back (event template_card_event) and can be
updated; an app without a callback URL may not send them at all."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

TASK_ID: Final = re.compile(r"[0-9A-Za-z_\-@]{1,128}")
KEY_BYTES: Final = 1024  # a button's or question's key
OPTION_ID_BYTES: Final = 128
MAX_BUTTONS: Final = 6
MAX_OPTIONS: Final = 20  # of a vote card's checkbox
MAX_SELECTS: Final = 3  # selectors of a multiple-choice card
MAX_SELECT_OPTIONS: Final = 10
MENU_NAME_BYTES: Final = 16  # a top-level entry; a sub-button may have 40 (Doc 90231)
MENU_SUB_NAME_BYTES: Final = 40
MENU_KEY_BYTES: Final = 128


@dataclass(frozen=True, slots=True)
class Button:
    """A card button: its press calls back with `key` (style 1-4: WeCom's four colours)."""

    text: str
    key: str
    style: int = 1


@dataclass(frozen=True, slots=True)
class Choice:
    """An option of a vote card or of a selector: chosen, its `id` comes back."""

    id: str
    text: str
    checked: bool = False


@dataclass(frozen=True, slots=True)
class Select:
    """A drop-down of a multiple-choice card."""

    question_key: str
    title: str
    options: Sequence[Choice]
    selected_id: str = ""


def button_card(
    *,
    task_id: str,
    title: str,
    buttons: Sequence[Button],
    desc: str = "",
    sub_title: str = "",
    replace_text: str = "",
) -> dict[str, Any]:
    """A button_interaction card: a question and up to 6 buttons."""
    _task_id(task_id)
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError(f"a button card has 1 to {MAX_BUTTONS} buttons, not {len(buttons)}")
    _unique((b.key for b in buttons), KEY_BYTES, "button key")
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": _title(title, desc),
        "task_id": task_id,
        "button_list": [{"text": b.text, "style": _style(b.style), "key": b.key} for b in buttons],
    }
    if sub_title:
        card["sub_title_text"] = sub_title
    if replace_text:
        card["replace_text"] = replace_text
    return card


def vote_card(
    *,
    task_id: str,
    title: str,
    question_key: str,
    options: Sequence[Choice],
    submit: Button,
    multi: bool,
    desc: str = "",
) -> dict[str, Any]:
    """A vote_interaction card: one question, 1 to 20 options ticked in the client (one, or
    several when `multi`: checkbox mode 1), sent together by its submit button; the callback
    carries the submit's key and the ids of the options ticked."""
    _task_id(task_id)
    _key(question_key, "question key")
    _key(submit.key, "submit key")
    if not multi and sum(o.checked for o in options) > 1:
        raise ValueError("a single-choice vote card has at most one option checked")
    return {
        "card_type": "vote_interaction",
        "main_title": _title(title, desc),
        "task_id": task_id,
        "checkbox": {
            "question_key": question_key,
            "option_list": _options(options, MAX_OPTIONS, checked=True),
            "mode": 1 if multi else 0,
        },
        "submit_button": {"text": submit.text, "key": submit.key},
    }


def multiple_card(
    *, task_id: str, title: str, selects: Sequence[Select], submit: Button, desc: str = ""
) -> dict[str, Any]:
    """A multiple_interaction card: up to 3 drop-downs answered together."""
    _task_id(task_id)
    if not 1 <= len(selects) <= MAX_SELECTS:
        raise ValueError(f"a multiple-choice card has 1 to {MAX_SELECTS} selectors")
    _unique((s.question_key for s in selects), KEY_BYTES, "question key")
    _key(submit.key, "submit key")
    select_list = []
    for select in selects:
        entry: dict[str, Any] = {
            "question_key": select.question_key,
            "title": select.title,
            "option_list": _options(select.options, MAX_SELECT_OPTIONS, checked=False),
        }
        if select.selected_id:
            entry["selected_id"] = select.selected_id
        select_list.append(entry)
    return {
        "card_type": "multiple_interaction",
        "main_title": _title(title, desc),
        "task_id": task_id,
        "select_list": select_list,
        "submit_button": {"text": submit.text, "key": submit.key},
    }


def menu_click(name: str, key: str) -> dict[str, Any]:
    """A menu button whose press comes back as a click event with `key`."""
    _menu_key(key)
    return {"type": "click", "name": name, "key": key}


def menu_location(name: str, key: str) -> dict[str, Any]:
    """A menu button that opens the location picker (event location_select)."""
    _menu_key(key)
    return {"type": "location_select", "name": name, "key": key}


def menu_group(name: str, buttons: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A top-level menu entry holding 1 to 5 buttons."""
    if not 1 <= len(buttons) <= 5:
        raise ValueError("a menu group holds 1 to 5 buttons")
    for button in buttons:
        if len(str(button.get("name", "")).encode()) > MENU_SUB_NAME_BYTES:
            raise ValueError(f"a menu button's name is at most {MENU_SUB_NAME_BYTES} bytes")
    return {"name": name, "sub_button": [dict(b) for b in buttons]}


def menu(entries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A whole menu: 1 to 3 top-level entries, their names at most 16 bytes."""
    if not 1 <= len(entries) <= 3:
        raise ValueError("a menu has 1 to 3 top-level entries")
    for entry in entries:
        if len(str(entry.get("name", "")).encode()) > MENU_NAME_BYTES:
            raise ValueError(f"a top-level menu name is at most {MENU_NAME_BYTES} bytes")
    return [dict(e) for e in entries]


def _title(title: str, desc: str) -> dict[str, str]:
    if not title:
        raise ValueError("a card needs a title")
    return {"title": title, "desc": desc} if desc else {"title": title}


def _task_id(task_id: str) -> None:
    if not TASK_ID.fullmatch(task_id):
        raise ValueError("a task_id is 1-128 characters of 0-9, A-Z, a-z, _, - and @")


def _style(style: int) -> int:
    if style not in (1, 2, 3, 4):
        raise ValueError("a button's style is 1, 2, 3 or 4")
    return style


def _key(key: str, what: str, limit: int = KEY_BYTES) -> None:
    if not key or len(key.encode()) > limit:
        raise ValueError(f"a {what} is 1 to {limit} bytes")


def _unique(keys: Any, limit: int, what: str) -> None:
    seen: set[str] = set()
    for key in keys:
        _key(key, what, limit)
        if key in seen:
            raise ValueError(f"two options share the {what} {key!r}")
        seen.add(key)


def _options(options: Sequence[Choice], most: int, *, checked: bool) -> list[dict[str, Any]]:
    if not 1 <= len(options) <= most:
        raise ValueError(f"1 to {most} options, not {len(options)}")
    _unique((o.id for o in options), OPTION_ID_BYTES, "option id")
    listed: list[dict[str, Any]] = []
    for option in options:
        entry: dict[str, Any] = {"id": option.id, "text": option.text}
        if checked and option.checked:
            entry["is_checked"] = True
        listed.append(entry)
    return listed


def _menu_key(key: str) -> None:
    _key(key, "menu key", MENU_KEY_BYTES)
