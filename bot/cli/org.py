"""`daka org`: create, change and list organisations."""

from __future__ import annotations

import argparse

from bot.cli.common import (
    SLUG,
    Command,
    Subparsers,
    UsageError,
    UserError,
    check_count,
    check_form,
    check_timezone,
)
from bot.config import Settings
from domain import forms
from domain.clock import Clock
from storage.models import Organisation
from storage.repo import Repo

DEFAULT_RETAIN_DAYS = Organisation.model_fields["retain_days"].default
DEFAULT_GRACE_DAYS = Organisation.model_fields["withdrawal_grace_days"].default
MAX_GRACE_DAYS = 366


def add_parsers(sub: Subparsers) -> None:
    org = sub.add_parser("org", help="organisations (a school, a town)")
    org_sub = org.add_subparsers(dest="action", required=True)
    create = org_sub.add_parser("create", help="create an organisation")
    create.add_argument("slug", help="short name, e.g. no1-middle-school")
    create.add_argument("--name", required=True, help="the name members see")
    create.add_argument("--timezone", default="Asia/Shanghai", help="IANA zone of its local day")
    create.add_argument(
        "--language",
        choices=["zh", "en"],
        default="zh",
        help="of reports, reminders and .xlsx exports",
    )
    create.add_argument("--form", default="health", help="check-in form: health or location")
    org_set = org_sub.add_parser("set", help="change an organisation's settings")
    org_set.add_argument("slug")
    org_set.add_argument("--name", help="the name members see")
    org_set.add_argument("--timezone", help="IANA zone of its local day, e.g. Asia/Shanghai")
    org_set.add_argument(
        "--language", choices=["zh", "en"], help="of reports, reminders and .xlsx exports"
    )
    org_set.add_argument("--form", help="check-in form: health or location")
    org_set.add_argument("--geofence", metavar="LAT,LON,RADIUS_M", help="flag check-ins outside")
    org_set.add_argument("--no-geofence", action="store_true", help="remove the geofence")
    org_set.add_argument(
        "--retain-days",
        type=int,
        help="days to keep an answer whose question names no period, at most the form's "
        f"max_retain_days (new organisations: {DEFAULT_RETAIN_DAYS})",
    )
    org_set.add_argument(
        "--withdrawal-grace-days",
        type=int,
        metavar="N",
        help="days between a withdrawal of consent and the erasure of the answers, 0 for at "
        f"once (new organisations: {DEFAULT_GRACE_DAYS})",
    )
    org_set.add_argument(
        "--wecom-agent",
        type=int,
        metavar="AGENT_ID",
        help="the WeCom app (its AgentId) that serves this organisation: one app, one "
        "organisation",
    )
    org_set.add_argument(
        "--no-wecom-agent", action="store_true", help="no WeCom app serves it any more"
    )
    org_set.add_argument(
        "--wecom-userid-is-member-id",
        action=argparse.BooleanOptionalAction,
        help="WeCom user ids are the roster's member ids: members are bound on first "
        "contact, after consent, with no id or name asked",
    )
    org_set.add_argument(
        "--wecom-text-only",
        action=argparse.BooleanOptionalAction,
        help="on WeCom, choices as numbered text instead of cards (members who use the "
        "WeChat plug-in see no cards)",
    )
    org_sub.add_parser("list", help="list organisations")


async def cmd_org_create(args: argparse.Namespace, repo: Repo, _s: Settings, clock: Clock) -> None:
    if not SLUG.match(args.slug):
        raise UserError("the slug must be 2-63 lower-case letters, digits or '-'")
    check_timezone(args.timezone)
    check_form(args.form)
    org = await repo.orgs.create(
        slug=args.slug,
        name=args.name,
        timezone=args.timezone,
        language=args.language,
        form=args.form,
        now=clock.now(),
    )
    print(
        f"created organisation {org.slug} ({org.name}), time zone {org.timezone}, form {org.form}"
    )


async def cmd_org_set(args: argparse.Namespace, repo: Repo, settings: Settings, _c: Clock) -> None:
    org = await repo.orgs.require(slug=args.slug)
    if args.name:
        org.name = args.name
    if args.timezone:
        check_timezone(args.timezone)
        org.timezone = args.timezone
    if args.language:
        org.language = args.language
    if args.form:
        check_form(args.form)
        org.form = args.form
    if args.retain_days is not None:
        check_form(org.form)
        bound = forms.load_form(org.form).max_retain_days
        check_count(
            "--retain-days", args.retain_days, 1, bound, f" days (form {org.form}'s bound)"
        )
        org.retain_days = args.retain_days
    if args.withdrawal_grace_days is not None:
        check_count("--withdrawal-grace-days", args.withdrawal_grace_days, 0, MAX_GRACE_DAYS)
        org.withdrawal_grace_days = args.withdrawal_grace_days
    if args.no_geofence:
        org.geofence_lat = org.geofence_lon = org.geofence_radius_m = None
    elif args.geofence:
        org.geofence_lat, org.geofence_lon, org.geofence_radius_m = _parse_geofence(args.geofence)
    await repo.session.flush()
    wecom = await _set_wecom(args, repo, org, settings)
    fence = (
        f"{org.geofence_lat},{org.geofence_lon} r={org.geofence_radius_m:g} m"
        if org.geofence_radius_m
        else "none"
    )
    print(
        f"{org.slug}: name {org.name}, time zone {org.timezone}, language {org.language}, "
        f"form {org.form}, geofence {fence}, retain {org.retain_days} days, "
        f"erase {org.withdrawal_grace_days} days after a withdrawal{wecom}"
    )


async def _set_wecom(
    args: argparse.Namespace, repo: Repo, org: Organisation, settings: Settings
) -> str:
    """The organisation's WeCom settings changed as asked; how they read now ("" for none).
    The app must be one of the deployment's (WECOM_AGENT_ID, WECOM_APPS)."""
    from handlers.wecom.messages import CHANNEL
    from storage.repos.channels import UNSET

    app_id: str | object | None = UNSET
    if args.no_wecom_agent:
        app_id = None
    elif args.wecom_agent is not None:
        check_count("--wecom-agent", args.wecom_agent, 1, 2**31 - 1, " (a WeCom AgentId)")
        check_wecom_agent(args.wecom_agent, settings)
        app_id = str(args.wecom_agent)
    setting = await repo.channels.of_org(org_id=org.id or 0, channel=CHANNEL)
    flags = (args.wecom_userid_is_member_id, args.wecom_text_only)
    if app_id is not UNSET or flags != (None, None):
        setting = await repo.channels.configure(
            org_id=org.id or 0,
            channel=CHANNEL,
            app_id=app_id,
            ids_are_member_ids=args.wecom_userid_is_member_id,
            text_only=args.wecom_text_only,
        )
    if setting is None or not (setting.app_id or setting.ids_are_member_ids or setting.text_only):
        return ""
    app = f"app {setting.app_id}" if setting.app_id else "no app"
    ids = ", user ids are member ids" if setting.ids_are_member_ids else ""
    text = ", text only" if setting.text_only else ""
    return f", wecom {app}{ids}{text}"


def check_wecom_agent(agent_id: int, settings: Settings) -> None:
    """A UsageError (exit 2) unless the deployment has settings for the app: letters of an
    organisation whose app it cannot reach would have nowhere to go."""
    agents = settings.wecom_agents
    if agent_id in agents:
        return
    known = ", ".join(str(a) for a in sorted(agents)) or "none"
    raise UsageError(
        f"--wecom-agent {agent_id}: no WeCom app of this deployment has that AgentId "
        f"(configured: {known}; set WECOM_AGENT_ID, or add the app to WECOM_APPS)"
    )


async def cmd_org_list(_a: argparse.Namespace, repo: Repo, _s: Settings, _c: Clock) -> None:
    from sqlmodel import select

    for org in (await repo.session.exec(select(Organisation).order_by(Organisation.slug))).all():
        print(f"{org.slug}\t{org.name}\t{org.timezone}\t{org.form}")


def _parse_geofence(text: str) -> tuple[float, float, float]:
    try:
        lat, lon, radius = (float(p) for p in text.split(","))
    except ValueError:
        raise UserError("--geofence must be LAT,LON,RADIUS_M, e.g. 39.99,116.31,2000") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
        raise UserError("--geofence: latitude -90..90, longitude -180..180, radius > 0")
    return lat, lon, radius


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("org", "create"): cmd_org_create,
    ("org", "set"): cmd_org_set,
    ("org", "list"): cmd_org_list,
}
