"""Steps of the enrolment conversation, for the core's tests of it and of what comes after."""

from __future__ import annotations

from domain.conversation import enrolment
from domain.conversation.enrolment import CONSENT, ConsentKey
from domain.conversation.io import Said, Text
from tests.domain.conversation.world import World


def one(said: list[Said]) -> Said:
    """The one thing said."""
    assert len(said) == 1, said
    return said[0]


async def consent_notice(world: World, who: int, code: str) -> Said:
    notice = one(await world.turn(who, enrolment.on_invite, code))
    assert world.state(who).state == CONSENT
    return notice


async def accept(world: World, who: int, code: str) -> list[Said]:
    said, _role = await world.run(
        who, enrolment.on_consent, ConsentKey(accept=True, code=code).pack()
    )
    return said


async def enrol(world: World, who: int, external_id: str, name: str, code: str) -> Said:
    await consent_notice(world, who, code)
    await accept(world, who, code)
    await world.turn(who, enrolment.on_member_id, Text(external_id))
    return one(await world.turn(who, enrolment.on_name, Text(name)))
