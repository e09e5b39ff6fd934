"""the channel a check-in (and each of its revisions) was submitted from, shown to managers
with the evidence (WeCom cannot mark forwarded content); rows from before stay unknown

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("checkin", "checkinrevision"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
            )


def downgrade() -> None:
    for table in ("checkinrevision", "checkin"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("channel")
