"""Who, in the caller's scope: the missing and abnormal lists (paged, with a nudge for each
missing member who can be reached), one member's last two weeks (/member, with a button for
each day's photo, sent to the manager who presses it), and where the check-ins came from
(/where). A member or unit named by a key or a command is asked of the
`Scope` first; "not yours" and "no such" get one answer, so a scope cannot be probed."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from domain.clock import day_end, parse_day
from domain.conversation.consent import app_name
from domain.conversation.io import Command, Option
from domain.conversation.manager_keys import (
    TOP,
    ListKey,
    ListKind,
    NavKey,
    NudgeKey,
    PhotoKey,
    actor,
    asked_day,
    stale,
)
from domain.conversation.summary import pressed
from domain.conversation.turn import Turn
from domain.forms import FormError, load_form
from domain.i18n import _, current_language
from domain.i18n import current as translator
from domain.kinds.photo import PhotoKind, image_type, media_id
from domain.present import texts
from domain.status import DayStatus
from storage.aggregates import channel_counts, count_member_days, member_days, place_counts
from storage.letters import Reminded, reminder_letters
from storage.models import Unit
from storage.schedules import OutboxRepo, plan
from storage.scope import Scope

PAGE = 10
WECOM = "wecom"  # the channel whose evidence cannot be told from forwarded content
MEMBER_DAYS = 14  # the days /member shows, today included


async def on_list(turn: Turn, scope: Scope, command: Command, kind: ListKind) -> None:
    """/missing [date] or /abnormal [date]: the first page over the whole scope."""
    day = await asked_day(turn, command, scope)
    if day is None:
        return
    text, options = await list_view(turn, scope, kind, None, day, 0)
    await turn.out.say(text, options)


async def on_list_page(turn: Turn, scope: Scope, key: ListKey) -> None:
    """A list's button on a summary, or a page arrow: the list replaces the view pressed."""
    asked = await pressed(turn, scope, key.unit, key.day)
    if asked is None:
        return
    unit, day = asked
    text, options = await list_view(turn, scope, key.kind, unit, day, key.page)
    await turn.out.notice()
    await turn.out.replace(text, options)


async def list_view(
    turn: Turn, scope: Scope, kind: ListKind, unit: Unit | None, day: date, page: int
) -> tuple[str, list[list[Option]]]:
    """Who is missing, or abnormal, in a unit of the scope (None: the whole scope)."""
    session = turn.repo.session
    org = scope.org
    unit_id = TOP if unit is None else unit.id or TOP
    under = await scope.under(session) if unit is None else [unit_id]
    off = (await plan(session, org)).off_units(day)
    statuses = {DayStatus.MISSING} if kind == "missing" else {DayStatus.REPORTED}
    rows = await member_days(
        session,
        org_id=scope.org_id,
        day=day,
        under=under,
        statuses=statuses,
        abnormal_only=kind == "abnormal",
        off_units=off,
        enrolled_by=day_end(day, org.timezone),
        limit=PAGE + 1,
        offset=page * PAGE,
    )
    more, rows = len(rows) > PAGE, rows[:PAGE]
    count = (
        await count_member_days(
            session,
            org_id=scope.org_id,
            day=day,
            under=under,
            statuses=statuses,
            off_units=off,
            enrolled_by=day_end(day, org.timezone),
        )
        if kind == "missing"
        else None
    )
    lang = current_language()
    title = (
        _("📋 <b>Missing</b> — {day}").format(day=day.isoformat())
        if kind == "missing"
        else _("⚠️ <b>Abnormal</b> — {day}").format(day=day.isoformat())
    )
    lines = [title + (f" ({count})" if count is not None else "")]
    if not rows:
        lines.append(_("Nobody."))
    for m in rows:
        extra = ""
        if kind == "abnormal" and m.reasons:
            extra = ": " + html.escape(texts.reasons_text(m.reasons, org.form, lang))
        elif m.unreachable:
            extra = _(" — unreachable (blocked the bot)")
        lines.append(
            f"• {html.escape(m.name)} ({html.escape(m.external_id)}, "
            f"{html.escape(m.unit_path)}){extra}"
        )
    iso = day.isoformat()
    options: list[list[Option]] = []
    if kind == "missing":
        options = [
            [
                Option(
                    _("📣 Nudge {name}").format(name=m.name),
                    key=NudgeKey(member=m.member_id, day=iso).pack(),
                )
            ]
            for m in rows
            if not m.unreachable
        ]
    paging = []
    if page > 0:
        paging.append(
            Option("«", key=ListKey(kind=kind, unit=unit_id, day=iso, page=page - 1).pack())
        )
    if more:
        paging.append(
            Option("»", key=ListKey(kind=kind, unit=unit_id, day=iso, page=page + 1).pack())
        )
    if paging:
        options.append(paging)
    options.append([Option(_("« Summary"), key=NavKey(unit=unit_id, day=iso).pack())])
    return "\n".join(lines), options


async def on_nudge(turn: Turn, scope: Scope, key: NudgeKey) -> None:
    """Remind one missing member of the scope now (through the outbox, like every reminder):
    on each channel they are reached on, in their language, not the manager's."""
    repo, clock = turn.repo, turn.clock
    member = await scope.member(repo.session, member_id=key.member)
    day = parse_day(key.day, scope.today(clock))
    if member is None or day is None:
        await stale(turn)
        return
    if member.withdrawn_at is not None:
        await turn.out.notice(
            _("{name} withdrew consent and is not reminded.").format(name=member.name),
            alert=True,
        )
        return
    letters = []
    if member.unreachable_since is None:
        assert member.id is not None
        letters = await reminder_letters(
            repo.session,
            translator(),
            org=scope.org,
            members=[Reminded(member.id, member.account_id, member.name)],
            channels=turn.letter_channels,
            day=day,
            slot=f"nudge@{clock.now():%H:%M}",
        )
    if not letters:
        await turn.out.notice(_("{name} cannot be reached.").format(name=member.name), alert=True)
        return
    await OutboxRepo(repo.session).enqueue(letters, now=clock.now())
    await repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="member.nudge",
        subject=member.external_id,
        now=clock.now(),
    )
    await turn.out.notice(_("Reminder sent to {name}.").format(name=member.name))


async def on_member(turn: Turn, scope: Scope, command: Command) -> None:
    """/member ID: one member's last two weeks, audited."""
    repo, clock = turn.repo, turn.clock
    external_id = command.args.strip()
    member = await scope.member(repo.session, external_id=external_id)
    if member is None:
        # The same answer for "no such id" and "not yours": scope is not to be probed.
        await turn.out.say(_("No member {id} in your scope.").format(id=html.escape(external_id)))
        return
    assert member.id is not None
    await repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="member.view",
        subject=member.external_id,
        now=clock.now(),
    )
    today = scope.today(clock)
    since = today - timedelta(days=MEMBER_DAYS - 1)
    checkins = {
        c.local_day: c
        for c in await repo.checkins.history(member_id=member.id, since=since, until=today)
    }
    unit = await repo.session.get(Unit, member.unit_id)
    lang = current_language()
    lines = [
        f"<b>{html.escape(member.name)}</b> ({html.escape(member.external_id)}, "
        f"{html.escape(unit.name_path if unit else '')})"
    ]
    if member.withdrawn_day is not None:
        lines.append(
            _("Withdrew consent on {day}: not asked, not counted from that day.").format(
                day=member.withdrawn_day.isoformat()
            )
        )
    if member.hold_reason is not None:
        lines.append(_("Legal hold: {reason}").format(reason=html.escape(member.hold_reason)))
    options: list[list[Option]] = []
    day = today
    while day >= since:
        c = checkins.get(day)
        photo = ""
        if c is not None and photo_ids(c.form, c.answers):
            photo = " 📷"
            label = _("📷 Photo of {day}").format(day=day.isoformat())
            key = PhotoKey(member=member.id, day=day.isoformat()).pack()
            options.append([Option(label, key=key)])
        if c is None:
            lines.append(f"❌ {day.isoformat()}")
        elif c.abnormal:
            lines.append(
                f"⚠️ {day.isoformat()} "
                + html.escape(texts.reasons_text(c.reasons, c.form, lang))
                + via(c.channel)
                + photo
            )
        else:
            place = " ".join(dict.fromkeys(p for p in (c.province, c.city) if p))
            lines.append(f"✅ {day.isoformat()} {html.escape(place)}{via(c.channel)}{photo}")
        day -= timedelta(days=1)
    if any(c.channel == WECOM for c in checkins.values()):
        lines += ["", forwarded_note()]
    await turn.out.say("\n".join(lines), options)


def photo_ids(form_name: str, answers: Mapping[str, Any]) -> list[int]:
    """The photos kept for a check-in's photo answers (an answer of another kind is never
    read as one, whatever was typed)."""
    try:
        form = load_form(form_name)
    except FormError:
        return []
    found = []
    for q in form.questions:
        if q.kind == PhotoKind.name:
            photo = media_id(answers.get(q.id))
            if photo is not None:
                found.append(photo)
    return found


async def on_photo(turn: Turn, scope: Scope, key: PhotoKey) -> None:
    """/member's photo button: the photos of that member's check-in of that day, sent to the
    presser alone, only for a member of their scope (the key is a claim), audited."""
    repo, clock = turn.repo, turn.clock
    member = await scope.member(repo.session, member_id=key.member)
    day = parse_day(key.day, scope.today(clock))
    if member is None or member.id is None or day is None:
        await stale(turn)
        return
    checkin = await repo.checkins.for_day(member_id=member.id, local_day=day)
    ids = photo_ids(checkin.form, checkin.answers) if checkin is not None else []
    photos = await repo.photos.of_member(org_id=scope.org_id, member_id=member.id, ids=ids)
    if not photos:
        await turn.out.notice(
            _("No photo of {name} is kept for {day}.").format(
                name=member.name, day=day.isoformat()
            ),
            alert=True,
        )
        return
    await repo.audit.log(
        org_id=scope.org_id,
        actor=actor(turn),
        action="member.photo",
        subject=member.external_id,
        detail=f"{day.isoformat()}: {len(photos)} photo(s)",
        now=clock.now(),
    )
    await turn.out.notice()
    caption = f"<b>{html.escape(member.name)}</b> ({html.escape(member.external_id)}) {day}"
    if any(photo.channel == WECOM for photo in photos):
        caption += "\n" + forwarded_note()
    for n, photo in enumerate(photos, start=1):
        _type, extension = image_type(photo.content)
        name = f"{member.external_id}-{day.isoformat()}-{n}.{extension}"
        await turn.out.file(name, photo.content, caption=caption, image=True)


def via(channel: str | None) -> str:
    """The app a check-in was submitted from, after its line (nothing when unknown)."""
    if channel is None:
        return ""
    return " · " + html.escape(_("via {app}").format(app=app_name(channel)))


def forwarded_note() -> str:
    """What a manager should know of WeCom's evidence: it cannot be told from forwarded."""
    return _(
        "ℹ️ WeCom does not mark forwarded content: read a photo or location sent on WeCom as "
        "sent by the member, not as taken there and then."
    )


async def on_where(turn: Turn, scope: Scope, command: Command) -> None:
    """/where [date]: the places the scope checked in from, and who was outside the area."""
    day = await asked_day(turn, command, scope)
    if day is None:
        return
    session = turn.repo.session
    under = await scope.under(session)
    counts = await place_counts(session, org_id=scope.org_id, day=day, under=under)
    lines = [_("📍 <b>Where the check-ins came from</b> — {day}").format(day=day.isoformat())]
    if not counts:
        lines.append(_("Nobody."))
    for province, city, count, outside in counts:
        place = " ".join(dict.fromkeys(p for p in (province, city) if p)) or _("unknown place")
        flag = _(" ({n} outside the area)").format(n=outside) if outside else ""
        lines.append(f"• {html.escape(place)}: {count}{flag}")
    channels = await channel_counts(session, org_id=scope.org_id, day=day, under=under)
    if any(channel is not None for channel in channels):
        apps = [
            f"{html.escape(app_name(channel) if channel else _('unknown'))} {n}"
            for channel, n in sorted(channels.items(), key=lambda kv: (kv[0] is None, kv[0]))
        ]
        lines.append(_("Sent from: {apps}").format(apps=", ".join(apps)))
    reported = await member_days(session, org_id=scope.org_id, day=day, under=under)
    outside_names = [m for m in reported if "geofence" in m.reasons]
    if outside_names:
        lines += ["", _("<b>Outside the area</b>")]
        lines += [
            f"• {html.escape(m.name)} ({html.escape(m.external_id)}, "
            f"{html.escape(m.unit_path)}){via(m.channel)}"
            for m in outside_names
        ]
    if WECOM in channels:
        lines += ["", forwarded_note()]
    await turn.out.say("\n".join(lines))
