"""privacy rights: withdrawal of consent, erasure and legal holds on roster entries, the grace
period before erasure per organisation, and how far retention has gone on each check-in

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 10:00:00.000000

Every existing check-in starts at `retention_applied` 0: the next retention run clears what its
questions' periods say (coordinates and photos past `retain_days` are already gone).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("organisation") as batch:
        batch.add_column(
            sa.Column(
                "withdrawal_grace_days", sa.Integer(), nullable=False, server_default=sa.text("7")
            )
        )
    with op.batch_alter_table("member") as batch:
        batch.add_column(sa.Column("withdrawn_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("withdrawn_day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("erased_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("held_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("checkin") as batch:
        batch.add_column(
            sa.Column(
                "retention_applied", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
    op.create_index(
        "ix_checkin_retention",
        "checkin",
        ["org_id", "retention_applied", "local_day"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_checkin_retention", table_name="checkin")
    with op.batch_alter_table("checkin") as batch:
        batch.drop_column("retention_applied")
    with op.batch_alter_table("member") as batch:
        for name in ("held_at", "hold_reason", "erased_at", "withdrawn_day", "withdrawn_at"):
            batch.drop_column(name)
    with op.batch_alter_table("organisation") as batch:
        batch.drop_column("withdrawal_grace_days")
