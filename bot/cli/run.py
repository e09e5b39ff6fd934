"""`daka run`, `webhook`, `scheduler`, `check`, `db` and `remind`: the long-running processes,
the database, and one reminder round sent now."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Iterator

from bot.cli.common import (
    Command,
    Subparsers,
    UsageError,
    UserError,
    check_count,
    create_session_factory_for,
)
from bot.config import SettingError, Settings
from bot.loop import chosen
from bot.loop import run as run_loop
from domain.clock import Clock, local_day, zone
from domain.schedule import ScheduleError, parse_time
from storage.repo import Repo
from storage.schedules import OutboxRepo, ScheduleRepo

SERVICES = frozenset({"run", "webhook", "scheduler"})
SETTLE_S = 10.0  # how long `remind` waits for letters another sender is sending


def add_parsers(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run",
        help="run the bot: Telegram (long polling) when BOT_TOKEN is set, WeCom's callbacks "
        "when the WECOM_* settings are, both with one scheduler; applies migrations first",
    )
    run.add_argument(
        "--metrics-port", type=int, help="serve /healthz and /metrics here (or METRICS_PORT)"
    )
    run.add_argument("--host", default="127.0.0.1", help="address WeCom's callbacks listen on")
    run.add_argument(
        "--wecom-port", type=int, help="port WeCom's callbacks listen on (or WECOM_PORT: 8081)"
    )
    webhook = sub.add_parser(
        "webhook", help="serve Telegram's webhook deliveries (one of several replicas)"
    )
    webhook.add_argument("--host", default="0.0.0.0", help="address to listen on")
    webhook.add_argument("--port", type=int, default=8080, help="port to listen on")
    webhook.add_argument(
        "--url",
        help="public HTTPS URL Telegram delivers to; its path is served "
        "(the site alone gets WEBHOOK_PATH)",
    )
    webhook.add_argument(
        "--no-set-webhook",
        dest="set_webhook",
        action="store_false",
        help="do not call setWebhook (every replica but one)",
    )
    webhook.add_argument(
        "--with-scheduler",
        action="store_true",
        help="also run reminders and the outbox sender here (single-replica deployments)",
    )
    sub.add_parser("check", help="health check: settings, database reachable, schema current")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations")

    sched = sub.add_parser(
        "scheduler",
        help="run only the scheduler and the outbox sender",
        description="Rounds, reports and the outbox sender, on Telegram when BOT_TOKEN is set "
        "and on WeCom when the WECOM_* settings are (either or both).",
    )
    sched.add_argument(
        "--metrics-port", type=int, help="serve /healthz and /metrics here (or METRICS_PORT)"
    )

    remind = sub.add_parser("remind", help="run a reminder round now and send it")
    remind.add_argument("slug")
    remind.add_argument("--unit", help="only members under this unit")
    remind.add_argument("--slot", metavar="HH:MM", help="count as this slot (never twice)")


def serve(args: argparse.Namespace, settings: Settings, clock: Clock) -> None:
    """Run one of the long-running processes (`run`, `scheduler`, `webhook`) until stopped."""
    if args.command == "run":
        run_deployment(args, settings, clock)
    elif args.command == "scheduler":
        if not settings.serves_telegram and not settings.serves_wecom:
            raise UsageError(
                "nothing to send on: set BOT_TOKEN for Telegram, the WECOM_* settings for "
                "WeCom (docs/wecom.md), or both"
            )
        if settings.serves_wecom:
            settings.require_wecom_senders()  # half set: one line naming the setting missing
        from bot.app import run_scheduler

        run_loop(
            run_scheduler(settings, clock=clock, metrics_port=_metrics_port(args, settings)),
            chosen(settings.event_loop, wecom=False),
        )
    elif args.command == "webhook":
        settings.require_token()
        settings.require_webhook_secret()
        check_count("--port", args.port, 0, 65535)
        if args.set_webhook and not args.url:
            raise UserError("webhook: --url is required unless --no-set-webhook is given")
        from bot.web import run_webhook, webhook_target

        webhook_target(settings, args.url)  # a path that disagrees: one line, exit 2

        run_loop(
            run_webhook(
                settings,
                host=args.host,
                port=args.port,
                url=args.url,
                set_webhook=args.set_webhook,
                with_scheduler=args.with_scheduler,
                clock=clock,
            ),
            chosen(settings.event_loop, wecom=False),
        )


def run_deployment(args: argparse.Namespace, settings: Settings, clock: Clock) -> None:
    """`daka run`: what the settings configure, Telegram's polling, WeCom's callback server,
    or both in one process with one scheduler and one sender."""
    if not settings.serves_telegram and not settings.serves_wecom:
        raise UsageError(
            "nothing to run: set BOT_TOKEN for Telegram, the WECOM_* settings for WeCom "
            "(docs/wecom.md), or both"
        )
    wecom_at: tuple[str, int] | None = None
    if settings.serves_wecom:
        settings.require_wecom_apps()  # a half-set app: one line naming the setting missing
        port = args.wecom_port if args.wecom_port is not None else settings.wecom_port
        check_count("--wecom-port", port, 0, 65535)
        wecom_at = (args.host, port)
    if not settings.serves_telegram:
        from bot.wecom import run_wecom

        assert wecom_at is not None
        host, port = wecom_at
        run_loop(
            run_wecom(settings, host=host, port=port, with_scheduler=True, clock=clock),
            chosen(settings.event_loop, wecom=True),
        )
        return
    from bot.app import run_polling

    metrics_port = _metrics_port(args, settings)
    run_loop(
        run_polling(settings, clock=clock, metrics_port=metrics_port, wecom_at=wecom_at),
        chosen(settings.event_loop, wecom=False),
    )


async def cmd_remind(
    args: argparse.Namespace, repo: Repo, settings: Settings, clock: Clock
) -> None:
    print(await remind_now(repo, settings, clock, slug=args.slug, unit=args.unit, slot=args.slot))


async def remind_now(
    repo: Repo,
    settings: Settings,
    clock: Clock,
    *,
    slug: str,
    unit: str | None = None,
    slot: str | None = None,
) -> str:
    """One reminder round now, sent (`daka remind`, and the demo's button); returns the line
    that says what became of it. Commits the round's letters before sending them."""
    from bot.app import channels_of, create_bot, deployment_couriers
    from domain.i18n import create_translator
    from scheduler.rounds import Rounds
    from scheduler.sender import Sender
    from storage.schedules import plan

    org = await repo.orgs.require(slug=slug)
    under = await repo.units.require(org_id=org.id or 0, name_path=unit) if unit else None
    _require_a_channel(settings)
    now = clock.now()
    day = local_day(now, org.timezone)
    if slot:
        try:
            round_slot = f"remind@{parse_time(slot):%H:%M}"
        except ScheduleError as exc:
            raise UserError(str(exc)) from None
    else:
        round_slot = f"manual@{now.astimezone(zone(org.timezone)):%H:%M:%S}"
    scope = f"unit:{under.id}" if under else "org"
    schedules = ScheduleRepo(repo.session)
    if not await schedules.claim_slot(
        org_id=org.id or 0, scope=scope, day=day, slot=round_slot, now=now
    ):
        raise UserError(f"the {round_slot} round of {day} has already run")
    org_plan = await plan(repo.session, org)
    sessions = create_session_factory_for(repo)
    unit_ids = (
        [u.id or 0 for u in org_plan.units if u.path.startswith(under.path)]
        if under
        else [u.id or 0 for u in org_plan.units]
    )
    bot = create_bot(settings) if settings.serves_telegram else None
    try:
        async with deployment_couriers(bot, settings, sessions) as couriers:
            rounds = Rounds(sessions, clock, create_translator(), channels_of(couriers))
            letters = await rounds.reminders(repo.session, org_plan, unit_ids, day, round_slot)
            await OutboxRepo(repo.session).enqueue(letters, now=now)
            await repo.session.commit()
            await Sender(couriers, sessions, clock).drain()
    finally:
        if bot is not None:
            await bot.session.close()
    # A running bot's own sender may have taken some of the letters: wait for it a little.
    deadline = asyncio.get_running_loop().time() + SETTLE_S
    while True:
        await repo.session.commit()  # a fresh read (SQLite reads from where a transaction began)
        stats = await OutboxRepo(repo.session).stats(
            org_id=org.id or 0, day=day, kind="remind", slot=round_slot
        )
        if not stats.pending or asyncio.get_running_loop().time() >= deadline:
            break
        await asyncio.sleep(0.1)
    sending = f", still sending {stats.pending}" if stats.pending else ""
    return (
        f"{org.slug} {day} {round_slot}: due {stats.due}, sent {stats.sent}, "
        f"skipped {stats.skipped}, failed {stats.failed}, unreachable {stats.blocked}{sending}"
    )


def _require_a_channel(settings: Settings) -> None:
    """Reminders go out on the channels configured: Telegram (`BOT_TOKEN`), WeCom (`WECOM_*`),
    or both; neither, or a half-set WeCom app alone, is one line naming the settings."""
    if not settings.serves_telegram and not settings.serves_wecom:
        raise UsageError(
            "no channel to send reminders on: set BOT_TOKEN for Telegram, the WECOM_* settings "
            "for WeCom (docs/wecom.md), or both"
        )
    if settings.serves_telegram:
        settings.require_token("to send reminders")
    else:
        settings.require_wecom_senders("to send reminders on WeCom")


@contextlib.contextmanager
def telegram_errors(settings: Settings) -> Iterator[None]:
    """Telegram out of reach, or refusing the token, is one line naming the setting to check."""
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    try:
        yield
    except TelegramUnauthorizedError:
        raise SettingError("BOT_TOKEN", "was refused by Telegram (Unauthorized)") from None
    except TelegramNetworkError as exc:
        reason = exc.message.removeprefix("HTTP Client says - ")
        raise UserError(
            f"Telegram cannot be reached at TELEGRAM_API_URL {settings.telegram_api_url}: {reason}"
        ) from None


def _metrics_port(args: argparse.Namespace, settings: Settings) -> int | None:
    port: int | None = getattr(args, "metrics_port", None)
    if port is not None:
        check_count("--metrics-port", port, 1, 65535)
    return port if port is not None else settings.metrics_port


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("remind", None): cmd_remind,
}
