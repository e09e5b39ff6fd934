"""index the outbox by claim, so a sender finds its batch without scanning every letter

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 19:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_outbox_claim", "outbox", ["claimed_by"])


def downgrade() -> None:
    op.drop_index("ix_outbox_claim", table_name="outbox")
