"""`python -m bench.sqlstats OUT.json [ARGS...]`: `daka ARGS` (`daka run` by default), counting
every SQL statement by the code of ours that issued it; the counts are written to OUT.json when
the bot exits.

`bench.checkin --sql-stats` runs the check-in bot this way, `bench.wecom --sql-stats` `daka
wecom`. SQLAlchemy's async layer runs
statements in a greenlet, so the caller is found through the parent greenlet's frames."""

from __future__ import annotations

import atexit
import importlib
import json
import re
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

greenlet: Any = importlib.import_module("greenlet")  # SQLAlchemy's dependency; no stubs
OURS = ("bot", "handlers", "storage", "domain", "scheduler")
ROOT = str(Path(__file__).resolve().parent.parent) + "/"

statements: Counter[tuple[str, str]] = Counter()
transactions: Counter[str] = Counter()


def kind_of(sql: str) -> str:
    """`SELECT fsmrecord`, `UPDATE inboundupdate`, `INSERT INTO checkin`, ..."""
    words = sql.split()
    if not words:
        return "?"
    verb = words[0].upper()
    if verb == "SELECT":
        found = re.search(r"\bFROM\s+\"?(\w+)", sql, re.IGNORECASE)
        return f"SELECT {found.group(1) if found else '?'}"
    if verb == "INSERT" and len(words) > 2:
        return f"INSERT {words[2]}"
    if verb in ("UPDATE", "DELETE") and len(words) > 1:
        target = words[2] if verb == "DELETE" and len(words) > 2 else words[1]
        return f"{verb} {target}"
    return verb


def _frames() -> list[FrameType]:
    frames: list[FrameType] = []
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    parent = greenlet.getcurrent().parent
    frame = parent.gr_frame if parent is not None else None
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def caller() -> str:
    """The innermost three frames of our code that led to the statement, and whether it ran
    outside the update's own session (aiogram's FSM middleware runs before ours)."""
    chain: list[str] = []
    in_unit_of_work = False
    for frame in _frames():
        name = frame.f_code.co_filename
        if "aiogram/fsm/middleware" in name and not in_unit_of_work:
            chain = [*chain[:3], "aiogram FSMContextMiddleware (outside the update's session)"]
            return " <- ".join(chain)
        if not name.startswith(ROOT):
            continue
        short = name[len(ROOT) :]
        if short.split("/", 1)[0] in OURS:
            chain.append(f"{short}:{frame.f_code.co_qualname}")
            in_unit_of_work |= frame.f_code.co_qualname == "DbSessionMiddleware.__call__"
    return " <- ".join(chain[:3]) if chain else "?"


def install(out: Path) -> None:
    @event.listens_for(Engine, "before_cursor_execute")
    def _statement(*args: Any) -> None:
        statements[(kind_of(str(args[2])), caller())] += 1

    @event.listens_for(Engine, "commit")
    def _commit(*_args: Any) -> None:
        transactions["commit"] += 1

    @event.listens_for(Engine, "rollback")
    def _rollback(*_args: Any) -> None:
        transactions["rollback"] += 1

    def dump() -> None:
        rows = [
            {"statement": kind, "caller": where, "count": count}
            for (kind, where), count in statements.most_common()
        ]
        out.write_text(
            json.dumps({"statements": rows, "transactions": dict(transactions)}, indent=1)
        )

    atexit.register(dump)


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: python -m bench.sqlstats OUT.json [DAKA ARGS...]", file=sys.stderr)
        return 2
    install(Path(sys.argv[1]))
    from bot.cli import main as daka

    return daka(sys.argv[2:] or ["run"])


if __name__ == "__main__":
    raise SystemExit(main())
