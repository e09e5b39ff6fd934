"""Prometheus metrics: what an operator watches on `/metrics` (webhook replicas, and the
polling bot or scheduler with `METRICS_PORT`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

UPDATES = Counter("daka_updates", "Updates handled, by type", ["type"], registry=REGISTRY)
HANDLER_ERRORS = Counter("daka_handler_errors", "Updates whose handling failed", registry=REGISTRY)
CHECKINS = Counter("daka_checkins", "Check-ins recorded (amendments included)", registry=REGISTRY)
REMINDERS_SENT = Counter(
    "daka_reminders_sent",
    "Scheduled messages delivered (reminders, lists, reports)",
    registry=REGISTRY,
)
REMINDERS_FAILED = Counter(
    "daka_reminders_failed",
    "Scheduled messages given up on (blocked bot, refused, too many failures)",
    registry=REGISTRY,
)
TELEGRAM_429 = Counter(
    "daka_telegram_429", "Too Many Requests answers from the Bot API", registry=REGISTRY
)
SEND_PAUSES = Counter(
    "daka_send_pauses",
    "Pauses a channel asked the outbox sender for (Telegram's 429), by channel",
    ["channel"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "daka_outbox_depth", "Scheduled messages waiting to be sent", registry=REGISTRY
)
SEND_RATE = Gauge(
    "daka_send_rate",
    "Messages per second the sender is allowed, all its channels together",
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The text format and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
