"""The app's menu (menu/create), in the organisation's language: "Check in" (打卡) opens the
location picker (its pick starts today's check-in, `handlers.wecom.turns`), the others are the
core's commands, their keys the commands' names (a click comes back as that command). One menu
serves everyone in the app: a member who taps a manager's entry is told it is for managers."""

from __future__ import annotations

from typing import Any, Final

from domain.i18n import Translator, __
from handlers.wecom.cards import menu, menu_click, menu_group, menu_location

CHECK_IN: Final = __("Check in")  # the picker's entry, which the location hint names
CHECKIN_KEY: Final = "checkin"
ME: Final = __("Me")
MANAGE: Final = __("Manage")
MEMBER_ENTRIES: Final = ((__("Today"), "today"), (__("History"), "history"), (__("Help"), "help"))
MANAGER_ENTRIES: Final = (
    (__("Summary"), "summary"),
    (__("Not checked in"), "missing"),
    (__("Abnormal"), "abnormal"),
    (__("Trend"), "trend"),
    (__("Export"), "export"),
)


def typed_commands(i18n: Translator) -> dict[str, str]:
    """The menu's entries as words typed instead (in every language), and their commands."""
    entries = ((CHECK_IN, CHECKIN_KEY), *MEMBER_ENTRIES, *MANAGER_ENTRIES)
    words: dict[str, str] = {}
    with i18n.context():
        for locale in i18n.available_locales:
            with i18n.use_locale(locale):
                words.update({str(label).casefold(): key for label, key in entries})
    return words


def app_menu(*, managers: bool = True) -> list[dict[str, Any]]:
    """The menu in the current language; `managers`: with the managers' entries."""
    entries = [
        menu_location(str(CHECK_IN), CHECKIN_KEY),
        menu_group(str(ME), [menu_click(str(name), key) for name, key in MEMBER_ENTRIES]),
    ]
    if managers:
        group = [menu_click(str(name), key) for name, key in MANAGER_ENTRIES]
        entries.append(menu_group(str(MANAGE), group))
    return menu(entries)
