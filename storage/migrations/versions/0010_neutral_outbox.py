"""outbox letters carry neutral content: a channel and an address instead of a Telegram chat
id, options instead of a Telegram inline keyboard

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 16:30:00.000000

Letters already in the outbox are converted: `chat_id` becomes channel "telegram" and the chat
id as text; each inline keyboard button becomes an option, its text the label and its callback
data the key (a URL button: the link), so queued reminders keep their "check in now" button
(`domain.keys.CHECKIN_NOW` is the callback data they carry). The downgrade converts back, and
drops the letters of other channels, which the old schema cannot address.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 1000

outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer()),
    sa.column("chat_id", sa.BigInteger()),
    sa.column("markup", sa.JSON(none_as_null=True)),
    sa.column("channel", sa.String()),
    sa.column("address", sa.String()),
    sa.column("options", sa.JSON(none_as_null=True)),
)


def options_of(markup: Any) -> list[list[dict[str, str]]] | None:
    """A stored inline keyboard as options; buttons of other kinds (Daka stores none) go."""
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    options = []
    for row in rows if isinstance(rows, list) else []:
        converted = []
        for button in row if isinstance(row, list) else []:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                continue
            if isinstance(button.get("callback_data"), str):
                converted.append({"label": button["text"], "key": button["callback_data"]})
            elif isinstance(button.get("url"), str):
                converted.append({"label": button["text"], "url": button["url"]})
        if converted:
            options.append(converted)
    return options or None


def markup_of(options: Any) -> dict[str, Any] | None:
    """Options back as an inline keyboard."""
    rows = []
    for row in options if isinstance(options, list) else []:
        buttons = []
        for option in row if isinstance(row, list) else []:
            if not isinstance(option, dict) or not isinstance(option.get("label"), str):
                continue
            if isinstance(option.get("key"), str):
                buttons.append({"text": option["label"], "callback_data": option["key"]})
            elif isinstance(option.get("url"), str):
                buttons.append({"text": option["label"], "url": option["url"]})
        if buttons:
            rows.append(buttons)
    return {"inline_keyboard": rows} if rows else None


def _convert(source: str, target: str, convert: Any) -> None:
    """Write `convert(source)` into `target` for every letter whose `source` is set."""
    connection = op.get_bind()
    read = sa.select(outbox.c.id, outbox.c[source]).where(outbox.c[source].is_not(None))
    write = (
        outbox.update()
        .where(outbox.c.id == sa.bindparam("letter_id"))
        .values({target: sa.bindparam("value")})
    )
    changes = [
        {"letter_id": letter_id, "value": convert(value)}
        for letter_id, value in connection.execute(read)
    ]
    for start in range(0, len(changes), CHUNK):
        connection.execute(write, changes[start : start + CHUNK])


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch.add_column(
            sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))
    op.execute(
        outbox.update().values(
            channel="telegram", address=sa.cast(outbox.c.chat_id, sa.String(64))
        )
    )
    _convert("markup", "options", options_of)
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column(
            "channel", existing_type=sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        )
        batch.alter_column(
            "address", existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        )
        batch.drop_constraint("uq_outbox_message", type_="unique")
        batch.create_unique_constraint(
            "uq_outbox_message", ["channel", "address", "day", "kind", "slot"]
        )
        batch.drop_column("chat_id")
        batch.drop_column("markup")


def downgrade() -> None:
    op.execute(outbox.delete().where(outbox.c.channel != "telegram"))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("chat_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("markup", sa.JSON(), nullable=True))
    op.execute(outbox.update().values(chat_id=sa.cast(outbox.c.address, sa.BigInteger())))
    _convert("options", "markup", markup_of)
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("chat_id", existing_type=sa.BigInteger(), nullable=False)
        batch.drop_constraint("uq_outbox_message", type_="unique")
        batch.create_unique_constraint("uq_outbox_message", ["chat_id", "day", "kind", "slot"])
        batch.drop_column("channel")
        batch.drop_column("address")
        batch.drop_column("options")
