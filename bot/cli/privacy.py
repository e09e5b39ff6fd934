"""`daka mydata`, `erase` and `hold`: an administrator answering a person's written request
(everything stored about them; erasure) and recording a legal hold. Each is audited."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli.common import Command, Subparsers, UserError, local_time
from bot.config import Settings
from domain.clock import Clock
from storage import owned
from storage.models import Member, Organisation
from storage.repo import Repo
from storage.repos.privacy import HOLD_REASON_MAX, Held, erasure_due

log = logging.getLogger(__name__)

ACTOR = "cli"


def add_parsers(sub: Subparsers) -> None:
    mydata = sub.add_parser(
        "mydata",
        help="everything stored about a member, as JSON (a written request)",
        description="The file a member gets with /mydata, for one roster entry: enrolment, "
        "consents, every check-in with every version, excuses, reminders, who looked them up "
        "or exported them, and which roles can read what. Audited.",
    )
    mydata.add_argument("slug")
    mydata.add_argument("member_id", help="the roster's member id")
    mydata.add_argument(
        "--output", type=Path, metavar="FILE", help="write it here (default: standard output)"
    )

    erase = sub.add_parser(
        "erase",
        help="erase a member's answers on request (withdraws their consent too)",
        description="Erases every answer of the member's check-ins and their revisions, the "
        "exact coordinates, the reasons of abnormal answers and of excuses, and the letters "
        "to them; keeps the roster entry and what the figures of past days count. Records "
        "their consent as withdrawn if it was not. Refused under a legal hold. Audited.",
    )
    erase.add_argument("slug")
    erase.add_argument("member_id", help="the roster's member id")
    erase.add_argument("--yes", action="store_true", help="confirm: erasing cannot be undone")

    hold = sub.add_parser("hold", help="legal holds: keep a member's answers from erasure")
    hold_sub = hold.add_subparsers(dest="action", required=True)
    for action, text in (
        ("set", "keep everything of the member until the hold is cleared"),
        ("clear", "end the hold; erasure and retention catch up"),
    ):
        parser = hold_sub.add_parser(action, help=text)
        parser.add_argument("slug")
        parser.add_argument("member_id", help="the roster's member id")
        parser.add_argument(
            "--reason", required=True, help=f"why (at most {HOLD_REASON_MAX} characters)"
        )


async def _member(repo: Repo, slug: str, external_id: str) -> tuple[Organisation, Member]:
    org = await repo.orgs.require(slug=slug)
    member = await repo.members.by_external(org_id=org.id or 0, external_id=external_id)
    if member is None or member.id is None:
        raise UserError(f"no member {external_id!r} in {org.slug}")
    return org, member


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise UserError("--reason is empty: say why")
    if len(reason) > HOLD_REASON_MAX:
        raise UserError(f"--reason is too long: at most {HOLD_REASON_MAX} characters")
    return reason


async def cmd_mydata(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org, member = await _member(repo, args.slug, args.member_id)
    now = clock.now()
    data = await owned.personal_data(repo.session, owned.owner_of_member(member), now=now)
    payload = owned.as_json(data)
    await repo.audit.log(
        org_id=org.id,
        actor=ACTOR,
        action="mydata",
        subject=member.external_id,
        detail="written request" + (f", to {args.output.name}" if args.output else ""),
        now=now,
    )
    if args.output is None:
        sys.stdout.write(payload.decode("utf-8") + "\n")
        return
    try:
        args.output.write_bytes(payload)
    except OSError as exc:
        raise UserError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"wrote everything stored about {member.external_id} ({member.name}) to {args.output}")


async def cmd_erase(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    org, member = await _member(repo, args.slug, args.member_id)
    if member.hold_reason is not None:
        raise UserError(
            f"{member.external_id} is under a legal hold ({member.hold_reason}): "
            f"clear it first with `daka hold clear {org.slug} {member.external_id} --reason ...`"
        )
    if not args.yes:
        raise UserError(
            f"erasing {member.external_id} ({member.name}) cannot be undone: run again with --yes"
        )
    now = clock.now()
    await repo.privacy.lock_person(member=member)
    if member.withdrawn_at is None:
        await repo.privacy.withdraw(member=member, org=org, actor=ACTOR, now=now)
    try:
        erased = await repo.privacy.erase(member=member, actor=ACTOR, why="on request", now=now)
    except Held:  # a hold set meanwhile
        raise UserError(f"{member.external_id} is under a legal hold") from None
    await forget_conversations(settings, erased.identities)
    await repo.session.commit()
    await forget_conversations(settings, erased.identities, again=True)
    print(
        f"erased {member.external_id} ({member.name}): answers of {erased.checkins} "
        f"check-in(s) and {erased.revisions} version(s), {erased.excuses} excuse reason(s), "
        f"{erased.letters} letter(s); consent withdrawn"
    )


async def forget_conversations(
    settings: Settings, identities: Sequence[tuple[str, str]], *, again: bool = False
) -> None:
    """Telegram's state in Redis (`REDIS_URL`) goes too, before the erasure commits: Redis out
    of reach is one line, and nothing is erased. And `again` once it has committed (a batch
    the erasure waited for may have written its step there meanwhile: see
    scheduler.jobs.forget_again); Redis out of reach then is only logged."""
    from redis.exceptions import RedisError

    from bot.app import conversation_forgetter

    forget = conversation_forgetter(settings)
    if forget is None or not identities:
        return
    try:
        await forget(identities)
    except (OSError, RedisError) as exc:
        if again:
            log.warning("conversations not cleared again after the erasure: %s", exc)
            return
        raise UserError(
            f"Redis at REDIS_URL cannot be reached ({exc}); nothing was erased: try again"
        ) from None


async def cmd_hold_set(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org, member = await _member(repo, args.slug, args.member_id)
    reason = _reason(args.reason)
    await repo.privacy.hold(member=member, reason=reason, actor=ACTOR, now=clock.now())
    note = ""
    if member.erased_at is not None:
        note = f" (its answers were already erased {local_time(member.erased_at, org.timezone)})"
    print(f"legal hold on {member.external_id} ({member.name}): {reason}{note}")


async def cmd_hold_clear(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    org, member = await _member(repo, args.slug, args.member_id)
    reason = _reason(args.reason)
    if member.hold_reason is None:
        raise UserError(f"{member.external_id} is not under a legal hold")
    await repo.privacy.release(member=member, reason=reason, actor=ACTOR, now=clock.now())
    due = erasure_due(member, org) if member.erased_at is None else None
    after = f"; its answers are erased once due ({local_time(due, org.timezone)})" if due else ""
    print(f"legal hold on {member.external_id} ({member.name}) cleared{after}")


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("mydata", None): cmd_mydata,
    ("erase", None): cmd_erase,
    ("hold", "set"): cmd_hold_set,
    ("hold", "clear"): cmd_hold_clear,
}
