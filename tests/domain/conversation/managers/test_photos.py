"""A check-in's photo in the managers' views: /member offers each day's photo, sent to the
manager who presses it only for a member of their scope, and audited; a forged button gets
the one refusal of a button gone bad."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from domain.conversation.lists import forwarded_note
from domain.conversation.manager_keys import PhotoKey
from domain.i18n import speaking
from domain.kinds.photo import media_ref
from storage.models import AuditEntry
from tests.domain.conversation.managers.managers_world import (
    CLASS_ONE,
    COLLEGE,
    DAY,
    ISO,
    NO_LONGER_VALID,
    World,
)
from tests.storage.seeding import check_in, roster_member

JPEG = b"\xff\xd8\xff\xe0 the thermometer"
PNG = b"\x89PNG\r\n\x1a\n the other class"


async def with_photo(world: World, external_id: str, data: bytes, *, answer: str = "photo") -> int:
    """`external_id` checked in today with `data` as the answer to `answer` (the form's photo
    question unless told); the photo's id."""
    async with world.seeding() as repo:
        member = await roster_member(repo, org_id=world.org_ids["school"], member_id=external_id)
        photo = await repo.photos.add(
            member=member,
            local_day=DAY,
            question="photo",
            content=data,
            content_type="image/jpeg",
            channel="wecom",
            now=world.clock.now(),
        )
        assert photo.id is not None
        await check_in(
            repo,
            member=member,
            day=DAY,
            abnormal=False,
            now=world.clock.now(),
            answers={"temperature": 36.6, answer: media_ref(photo.id)},
        )
        return photo.id


async def audited(world: World) -> list[tuple[str, str | None, str | None]]:
    async with world.sessions() as session:
        stmt = select(AuditEntry).where(AuditEntry.action == "member.photo")
        return [(a.actor, a.subject, a.detail) for a in (await session.exec(stmt)).all()]


async def test_a_manager_is_sent_the_photo_of_a_day_and_it_is_audited(world: World) -> None:
    await with_photo(world, "2024001", JPEG)
    [view] = (await world.command(CLASS_ONE, "/member 2024001")).said
    zhang = await world.member_id("2024001")
    assert view.keys() == [PhotoKey(member=zhang, day=ISO).pack()]
    today, yesterday = view.text.splitlines()[1:3]
    assert today.startswith(f"✅ {ISO}") and today.endswith(" 📷") and "📷" not in yesterday
    notice, photo = (await world.press(CLASS_ONE, view.keys()[0])).said
    assert notice.how == "notice" and not notice.alert
    assert (photo.how, photo.image, photo.data) == ("file", True, JPEG)
    assert photo.name == f"2024001-{ISO}-1.jpg" and "张三" in photo.text
    with speaking("zh"):
        assert forwarded_note() in photo.text  # sent on WeCom: not to be told from forwarded
    assert await audited(world) == [(f"telegram:{CLASS_ONE}", "2024001", f"{ISO}: 1 photo(s)")]


async def test_a_forged_button_for_a_member_outside_the_scope_is_refused(world: World) -> None:
    """王五 is of class two: the class-one counselor's forged key gets "no longer valid", no
    photo and no audit entry; the college's manager, whose scope holds him, gets it."""
    await with_photo(world, "2024003", PNG)
    wang = await world.member_id("2024003")
    forged = PhotoKey(member=wang, day=ISO).pack()
    [refused] = (await world.press(CLASS_ONE, forged)).said
    assert (refused.how, refused.text, refused.alert) == ("notice", NO_LONGER_VALID, True)
    assert await audited(world) == []
    _notice, photo = (await world.press(COLLEGE, forged)).said
    assert photo.data == PNG and photo.name == f"2024003-{ISO}-1.png"
    for bad in (f"pho:{wang}:not-a-day", f"pho:-1:{ISO}", "pho:1", f"pho:{wang}:1999-01-01"):
        [refused] = (await world.press(CLASS_ONE, bad)).said
        assert (refused.text, refused.alert) == (NO_LONGER_VALID, True), bad


async def test_no_photo_that_day_is_said_and_a_typed_reference_is_never_a_photo(
    world: World,
) -> None:
    """A day without a photo answer says so; "media:<id>" typed as another question's answer
    does not make somebody's photo readable."""
    other = await with_photo(world, "2024003", PNG)
    async with world.seeding() as repo:
        zhang = await roster_member(repo, org_id=world.org_ids["school"], member_id="2024001")
        await check_in(
            repo,
            member=zhang,
            day=DAY - timedelta(days=1),
            abnormal=False,
            now=world.clock.now(),
            answers={"exposure": {"yes": True, "detail": media_ref(other)}},
        )
    [view] = (await world.command(CLASS_ONE, "/member 2024001")).said
    assert view.keys() == []
    zhang_id = await world.member_id("2024001")
    yesterday = (DAY - timedelta(days=1)).isoformat()
    [said] = (await world.press(CLASS_ONE, PhotoKey(member=zhang_id, day=yesterday).pack())).said
    assert said.how == "notice" and said.alert and "张三" in said.text and yesterday in said.text
    assert await audited(world) == []
