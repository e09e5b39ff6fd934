"""The fields every log record carries (the update, organisation or job it belongs to), kept in a
context variable so any layer can add to them; `bot.logs` formats and redacts the records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token

CONTEXT_FIELDS = ("update_id", "org", "job")

LogContext = Mapping[str, int | str]
_context: ContextVar[LogContext | None] = ContextVar("daka_log_context", default=None)


def current_context() -> dict[str, int | str]:
    """The context fields in force here (for handing to a task started elsewhere)."""
    return dict(_context.get() or {})


def bind(
    *, update_id: int | None = None, org: str | None = None, job: str | None = None
) -> Token[LogContext | None]:
    """Add fields for the rest of this context (task); undone by `unbind` or an enclosing
    `log_context` ending."""
    fields = {**current_context(), **_given(update_id=update_id, org=org, job=job)}
    return _context.set(fields)


def unbind(token: Token[LogContext | None]) -> None:
    """Restore the fields in force before the `bind` that returned `token`."""
    _context.reset(token)


@contextmanager
def log_context(
    *, update_id: int | None = None, org: str | None = None, job: str | None = None
) -> Iterator[None]:
    """Fields for every record logged inside the block, nested blocks adding to outer ones."""
    token = bind(update_id=update_id, org=org, job=job)
    try:
        yield
    finally:
        unbind(token)


def _given(**fields: int | str | None) -> dict[str, int | str]:
    return {name: value for name, value in fields.items() if value is not None}
