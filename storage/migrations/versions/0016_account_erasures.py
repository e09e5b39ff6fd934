"""how many times an account's data was erased: a turn that read the person before an erasure
committed writes nothing of theirs after it (see storage.repos.accounts.ErasedMeanwhile)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.add_column(
            sa.Column("erasures", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("account") as batch:
        batch.drop_column("erasures")
