"""A check-in's photo on WeCom, over real HTTP against the local WeCom: the member's image is
fetched with media/get when answered and kept, so that days after WeCom has let it go a
manager's /member still shows it and sends it to the manager (media/upload, an image
message); a manager outside the member's unit replaying the button is refused; a MediaId
WeCom no longer serves is asked for again; retention and erasure take the bytes away."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from domain.conversation.manager_keys import no_longer_valid
from domain.i18n import _, speaking
from handlers.wecom.messages import CHANNEL
from scheduler.jobs import apply_retention_now
from storage.models import AuditEntry, Member, Photo
from storage.repo import Repo
from tests.handlers.wecom.test_conversation import TIANANMEN, bind, checkins
from tests.handlers.wecom.world import WeComDaka, WeComMember, texts

JPEG = b"\xff\xd8\xff\xe0" + b"the thermometer reads 36.6" * 40


async def up_to_the_photo(member: WeComMember) -> None:
    await member.says("/checkin")
    await member.sends_location(*TIANANMEN)
    await member.says("36.6")
    await member.says("7")  # 以上都没有
    await member.says("8")  # 完成
    asked = await member.taps("否")
    assert "如有需要，请上传一张照片" in texts(asked)


async def grant_class_two(app: WeComDaka, userid: str) -> None:
    """A manager of 工程学院/二班 only (张三 is of 一班)."""
    async with app.sessions() as session:
        repo = Repo(session)
        org_id = app.org_ids["school"]
        account = await repo.accounts.ensure(
            channel=CHANNEL, external_id=userid, now=app.clock.now()
        )
        unit = await repo.units.require(org_id=org_id, name_path="工程学院/二班")
        await repo.roles.grant(
            org_id=org_id,
            account_id=account.id or 0,
            unit_id=unit.id,
            role="manager",
            now=app.clock.now(),
        )
        await session.commit()


async def photos(app: WeComDaka) -> list[Photo]:
    async with app.sessions() as session:
        return list((await session.exec(select(Photo))).all())


def images_to(app: WeComDaka, userid: str) -> list[bytes]:
    return [
        app.wecom.media[str(d.body["media_id"])].data
        for d in app.wecom.inbox(userid)
        if d.msgtype == "image"
    ]


async def test_a_photo_outlives_wecoms_three_days_and_only_a_manager_of_the_member_sees_it(
    app: WeComDaka,
) -> None:
    await app.org()
    await app.grant_manager("boss")
    await app.start()
    boss, other = app.member("boss"), app.member("teacher2")
    await grant_class_two(app, "teacher2")
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await up_to_the_photo(zhangsan)

    lost = await zhangsan.sends_image("a-media-id-wecom-no-longer-has")
    with speaking("zh"):
        assert _("Sorry, the photo could not be received. Please send it again.") in texts(lost)
    assert "如有需要，请上传一张照片" in texts(lost) and await photos(app) == []
    media_id = app.wecom.put_media(JPEG)
    summary = await zhangsan.sends_image(media_id)
    assert "已附照片" in texts(summary)
    await zhangsan.taps("✅ 确认提交")
    [kept] = await photos(app)
    [stored] = await checkins(app)
    assert stored.answers["photo"] == f"media:{kept.id}" and kept.content == JPEG
    assert (kept.content_type, kept.channel, kept.size) == ("image/jpeg", "wecom", len(JPEG))

    app.clock.advance(timedelta(days=3, hours=1))  # WeCom serves the MediaId no more
    assert app.wecom._media(media_id) is None
    view = await boss.says("/member 2024001")
    assert "张三" in texts(view) and "📷" in texts(view)
    shown = next(s for s in reversed(boss.screen()) if s.buttons)
    [label] = shown.buttons
    sent = await boss.taps(label)
    assert [s.msgtype for s in sent].count("image") == 1, sent
    assert images_to(app, "boss") == [JPEG]
    assert "张三" in texts(sent)

    # teacher2 manages 二班 only: the same button, replayed from their side, is refused
    [card] = [
        d.card
        for d in app.wecom.inbox("boss")
        if d.card is not None and "button_list" in d.card.body
    ][-1:]
    key = str(card.body["button_list"][0]["key"])
    refused = await other.presses(card.task_id, key)
    assert images_to(app, "teacher2") == []
    with speaking("zh"):
        assert texts(refused) == no_longer_valid()
    async with app.sessions() as session:
        audit = (
            await session.exec(select(AuditEntry).where(AuditEntry.action == "member.photo"))
        ).all()
    assert [(a.actor, a.subject) for a in audit] == [("wecom:boss", "2024001")]


async def test_retention_and_erasure_take_the_photos_away(app: WeComDaka) -> None:
    await app.org()
    await app.start()
    zhangsan = app.member("zhangsan")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await up_to_the_photo(zhangsan)
    await zhangsan.sends_image(app.wecom.put_media(JPEG))
    await zhangsan.taps("✅ 确认提交")
    lisi = app.member("lisi")
    await bind(lisi, await app.invite(), "2024002", "李四")
    await up_to_the_photo(lisi)
    await lisi.sends_image(app.wecom.put_media(JPEG))
    await lisi.taps("✅ 确认提交")
    assert len(await photos(app)) == 2

    app.clock.advance(timedelta(days=8))  # the health form keeps a photo 7 days
    await apply_retention_now(app.sessions, app.clock)
    assert await photos(app) == []
    assert all(c.answers["photo"] is None for c in await checkins(app))

    await up_to_the_photo(zhangsan)
    await zhangsan.sends_image(app.wecom.put_media(JPEG))
    assert len(await photos(app)) == 1  # a draft's photo, kept before it is submitted
    async with app.sessions() as session:
        member = (await session.exec(select(Member).where(Member.external_id == "2024001"))).one()
        erased = await Repo(session).privacy.erase(
            member=member, actor="cli", why="asked", now=app.clock.now()
        )
        await session.commit()
    assert erased.photos == 1 and await photos(app) == []


GIF = b"GIF89a\x10\x00\x10\x00" + b"a moving thermometer" * 20


def files_to(app: WeComDaka, userid: str) -> list[tuple[str, bytes]]:
    return [
        (media.filename, media.data)
        for d in app.wecom.inbox(userid)
        if d.msgtype == "file"
        for media in [app.wecom.media[str(d.body["media_id"])]]
    ]


@pytest.mark.parametrize(
    ("content", "refused", "name"),
    [(GIF, False, "2024001-2026-11-28-1.gif"), (JPEG, True, "2024001-2026-11-28-1.jpg")],
    ids=["not-a-jpg-or-png", "refused-as-an-image"],
)
async def test_a_photo_wecom_will_not_take_as_an_image_reaches_the_manager_as_a_file(
    app: WeComDaka, content: bytes, refused: bool, name: str
) -> None:
    """Regression: media/upload takes only a JPG or PNG as an image (40004 otherwise), and
    the manager got nothing but the press's answer. Such a photo, or one WeCom refuses as an
    image, now goes as a file, its caption after it."""
    await app.org()
    await app.grant_manager("boss")
    await app.start()
    zhangsan, boss = app.member("zhangsan"), app.member("boss")
    await bind(zhangsan, await app.invite(), "2024001", "张三")
    await up_to_the_photo(zhangsan)
    await zhangsan.sends_image(app.wecom.put_media(content))
    await zhangsan.taps("✅ 确认提交")

    await boss.says("/member 2024001")
    shown = next(s for s in reversed(boss.screen()) if s.buttons)
    [label] = shown.buttons
    if refused:
        app.wecom.fail("/cgi-bin/media/upload", errcode=40004, errmsg="invalid media type")
    sent = await boss.taps(label)
    assert images_to(app, "boss") == []
    assert files_to(app, "boss") == [(name, content)]
    assert "张三" in texts(sent)


async def test_media_upload_refuses_a_gif_as_an_image(app: WeComDaka) -> None:
    """The local WeCom as the real one: an image is a JPG or PNG (errcode 40004)."""
    await app.org()
    await app.start()
    assert app.channel is not None
    refused = await app.channel.api.upload("image", "a.gif", GIF, "image/gif")
    assert "40004" in str(refused)
    kept = await app.channel.api.upload("file", "a.gif", GIF, "image/gif")
    assert getattr(kept, "media_id", "")
