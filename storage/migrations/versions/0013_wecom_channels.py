"""channels beside Telegram: a journal of events named by text (WeCom's MsgId), and how each
organisation is served on such a channel (its app, member ids as user ids, text only)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inboundevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=True),
        sa.Column("replies", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("replied_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "key", name="uq_inbound_event_key"),
    )
    op.create_index("ix_inbound_event_unhandled", "inboundevent", ["channel", "handled_at"])
    op.create_index("ix_inbound_event_unreplied", "inboundevent", ["channel", "replied_at"])
    op.create_table(
        "orgchannel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("app_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("ids_are_member_ids", sa.Boolean(), nullable=False),
        sa.Column("text_only", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("org_id", "channel", name="uq_orgchannel_org"),
        sa.UniqueConstraint("channel", "app_id", name="uq_orgchannel_app"),
    )


def downgrade() -> None:
    op.drop_table("orgchannel")
    op.drop_index("ix_inbound_event_unreplied", table_name="inboundevent")
    op.drop_index("ix_inbound_event_unhandled", table_name="inboundevent")
    op.drop_table("inboundevent")
