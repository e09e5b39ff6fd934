"""Two classmates check in before the person arrives, so the managers' views have something in
them: one healthy at home, one with a fever in Shanghai (abnormal, and outside the area).

They go through the real bot like anyone else: enrolment through the invite, then the check-in
conversation, read and answered by their visible buttons. They speak English to the bot (its
texts are the catalogs' msgids and the form's English labels); their chats are not shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.localapi import FakeUser, LocalBotAPI, SentMessage
from domain import forms

log = logging.getLogger(__name__)

WAIT_S = 15.0


@dataclass(frozen=True)
class Classmate:
    telegram_id: int
    member_id: str
    name: str
    where: tuple[float, float]
    temperature: str
    symptoms: tuple[str, ...]  # option ids of the health form's "symptoms"


async def warm_up(server: LocalBotAPI, invite: str, classmates: Sequence[Classmate]) -> bool:
    """Enrol and check in each classmate; False (and a warning) if the bot did not follow."""
    form = forms.load_form("health")
    for classmate in classmates:
        user = server.user(classmate.telegram_id, classmate.name.split()[0], "en")
        try:
            await _enrol(user, invite, classmate)
            await _check_in(user, classmate, form)
        except AssertionError as exc:
            log.warning("demo: %s did not get through the sample check-in: %s", classmate, exc)
            return False
    return True


async def _reply(user: FakeUser, wanted: Callable[[SentMessage], bool]) -> SentMessage:
    while True:
        reply = await user.next_reply(WAIT_S)
        if wanted(reply):
            return reply


def _button(text: str) -> Callable[[SentMessage], bool]:
    return lambda m: any(text == b for row in m.buttons for b in row)


async def _enrol(user: FakeUser, invite: str, classmate: Classmate) -> None:
    user.send(f"/start {invite}")
    notice = await _reply(user, _button("✅ I agree"))
    user.press_button(notice, "✅ I agree")
    await _reply(user, lambda m: "member id" in m.text)
    user.send(classmate.member_id)
    await _reply(user, lambda m: "name" in m.text)
    user.send(classmate.name)
    await _reply(user, lambda m: "Welcome" in m.text)


async def _check_in(user: FakeUser, classmate: Classmate, form: forms.Form) -> None:
    user.send("/checkin")
    await _reply(user, lambda m: m.has_request_location_button)
    user.send_location(*classmate.where, accuracy=15.0)
    await _reply(user, lambda m: "temperature" in m.text)
    user.send(classmate.temperature)
    question = await _reply(user, _button("Done ✔"))
    symptoms = form.question("symptoms")
    for option in symptoms.options:
        if option.id in classmate.symptoms:
            user.press_button(question, option.label("en"))
            question = await _reply(user, lambda m: m.edited)
    user.press_button(question, "Done ✔")
    exposure = await _reply(user, _button("No"))
    user.press_button(exposure, "No")
    photo = await _reply(user, _button("⏭ Skip"))
    user.press_button(photo, "⏭ Skip")
    summary = await _reply(user, _button("✅ Confirm"))
    user.press_button(summary, "✅ Confirm")
    await _reply(user, lambda m: "Check-in recorded" in m.text)
