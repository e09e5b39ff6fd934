"""check-in index for one day's figures: (org, day, member, abnormal)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:40:00.000000

Summaries and lists join each member to their check-in of one day. Through the (member, day)
key those probes are spread over the whole index (every day of every member) and each found row
is read from the table; through this index one day's entries of an organisation lie together
and hold what the figures read. It replaces ix_checkin_org_day, its prefix, which served the
same (organisation, day) range scans and would now only cost writes.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_checkin_org_day_member",
        "checkin",
        ["org_id", "local_day", "member_id", "abnormal"],
        unique=False,
    )
    op.drop_index("ix_checkin_org_day", table_name="checkin")


def downgrade() -> None:
    op.create_index("ix_checkin_org_day", "checkin", ["org_id", "local_day"], unique=False)
    op.drop_index("ix_checkin_org_day_member", table_name="checkin")
