"""audit actors name their channel: "telegram:730", no longer "730"

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 20:20:00.000000

Before identities had channels, a person in the audit trail was their Telegram user id alone;
now a person acts from a channel, and the same digits may name two people on two channels. The
entries written before are Telegram's: every actor made of digits only gets the "telegram:"
prefix ("cli" and the like stay as they are). The downgrade takes the prefix off again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "telegram:"


def _digits_only(dialect: str) -> str:
    if dialect == "postgresql":
        return "actor ~ '^[0-9]+$'"
    return "actor <> '' AND actor NOT GLOB '*[^0-9]*'"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(
        sa.text(
            f"UPDATE auditentry SET actor = :prefix || actor WHERE {_digits_only(dialect)}"
        ).bindparams(prefix=PREFIX)
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE auditentry SET actor = substr(actor, :start) WHERE actor LIKE :pattern"
        ).bindparams(start=len(PREFIX) + 1, pattern=PREFIX + "%")
    )
