"""The photos of a check-in draft: each photo answered is fetched from the channel at once
(WeCom keeps a member's image 3 days) and kept in the `photo` table, its answer `media:<id>`;
a draft's photo that will not be submitted (replaced, skipped, the draft cancelled or replaced
by a new day's) is deleted at once, so that "nothing was recorded" holds for photos too."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from domain.conversation.drafts import Draft
from domain.conversation.io import Photo
from domain.conversation.turn import Turn
from domain.forms import FormError, load_form
from domain.i18n import _
from domain.kinds.photo import MAX_PHOTO_BYTES, PhotoKind, image_type, media_id, media_ref

if TYPE_CHECKING:
    from domain.conversation.checkin import Dialogue

Fetch = Callable[[str], Awaitable[bytes]]  # a photo's bytes by the channel's reference

log = logging.getLogger(__name__)


async def keep_photo(dialogue: Dialogue, draft: Draft, photo: Photo, fetch: Fetch) -> str | None:
    """The photo answered, fetched from the channel now (WeCom keeps it 3 days) and kept:
    its stored answer `media:<id>`; None after asking again, saying why it was not taken."""
    turn = dialogue.turn
    try:
        data = await fetch(photo.ref)
    except LookupError as error:
        log.warning("photo of member %s not fetched: %s", dialogue.member.id, error)
        data = b""
    if not data:
        header = _("Sorry, the photo could not be received. Please send it again.")
        await dialogue.ask(draft, header=header)
        return None
    if len(data) > MAX_PHOTO_BYTES:
        header = _("This photo is too large (at most {mb} MB). Please send a smaller one.")
        await dialogue.ask(draft, header=header.format(mb=MAX_PHOTO_BYTES // (1024 * 1024)))
        return None
    content_type, _extension = image_type(data)
    kept = await turn.repo.photos.add(
        member=dialogue.member,
        local_day=draft.day,
        question=draft.qid,
        content=data,
        content_type=content_type,
        channel=turn.person.channel,
        now=turn.clock.now(),
    )
    assert kept.id is not None
    await discard_draft_photos(turn, draft.data, only=draft.qid)  # the one it replaces
    return media_ref(kept.id)


async def discard_draft_photos(
    turn: Turn, data: dict[str, Any], *, only: str | None = None
) -> None:
    """The photos a check-in draft kept (`data`: its conversation state) and will not submit:
    all of them, or the answer to question `only` (about to be replaced). Only photo answers
    count, and only the draft's member's photos: a reference typed as text is never followed."""
    member_id, answers = data.get("member"), data.get("answers")
    if "draft" not in data or not isinstance(member_id, int) or not isinstance(answers, dict):
        return
    try:
        form = load_form(str(data.get("form")))
    except FormError:
        return
    ids = [
        photo
        for q in form.questions
        if q.kind == PhotoKind.name
        and (only is None or q.id == only)
        and (photo := media_id(answers.get(q.id))) is not None
    ]
    await turn.repo.photos.delete_ids(member_id=member_id, ids=ids)
