"""identities: a person's id on each channel is bound to an account with an id of its own

Account gets a surrogate integer key `id`; its Telegram user id becomes an `identity` row
(channel "telegram", the id as decimal text). Member, Consent, RoleGrant and EnrolAttempt refer
to the account by `account_id` instead of carrying the Telegram user id. A Telegram id that one
of them carried without an account row (a role granted from the command line to someone who had
never written, say) gets an account first, so nothing is lost.

The downgrade restores the old shape for Telegram identities; an account with no Telegram
identity (one that only ever wrote from another channel) cannot be expressed there, and is
dropped together with its consents, role grants and enrolment attempts (its roster entries stay,
not enrolled).

On SQLite the tables are rebuilt (copy, drop, rename), which `storage.migrate.migrating` allows
by running the migration with foreign keys off, checking them before commit.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from storage.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, whether its account is optional, its index on the account: (old name, new name)
#  and the other columns in it). Member's unique (org_id, ...) is handled on its own.
REFERRING = (
    ("member", True, ("ix_member_telegram", "ix_member_account"), ()),
    ("consent", False, ("ix_consent_who", "ix_consent_who"), ("org_id",)),
    ("rolegrant", False, ("ix_role_telegram", "ix_role_account"), ("org_id",)),
    ("enrolattempt", False, ("ix_enrol_attempt_who", "ix_enrol_attempt_who"), ("at",)),
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _account_columns() -> list[sa.Column]:
    """Account's columns other than its key, as 0001, 0006 and 0008 made them."""
    return [
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("menu", sa.String(length=32), nullable=True),
        sa.Column("org_id", sa.Integer(), nullable=True),
    ]


KEPT = "language, failed_attempts, locked_until, first_seen, menu, org_id"


def upgrade() -> None:
    # Every Telegram id that something refers to gets an account, if it has none.
    op.execute(
        """
        INSERT INTO account (telegram_id, failed_attempts, first_seen)
        SELECT seen.telegram_id, 0, COALESCE(MIN(seen.at), CURRENT_TIMESTAMP)
        FROM (
            SELECT telegram_id, enrolled_at AS at FROM member WHERE telegram_id IS NOT NULL
            UNION ALL SELECT telegram_id, at FROM consent
            UNION ALL SELECT telegram_id, granted_at FROM rolegrant
            UNION ALL SELECT telegram_id, at FROM enrolattempt
        ) AS seen
        WHERE NOT EXISTS (SELECT 1 FROM account WHERE account.telegram_id = seen.telegram_id)
        GROUP BY seen.telegram_id
        """
    )

    # Account gets its id (oldest first), still keeping its telegram_id for the copying below.
    numbered = "ROW_NUMBER() OVER (ORDER BY first_seen, telegram_id)"
    if _sqlite():
        op.create_table(
            "_alembic_tmp_account",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("telegram_id", sa.BigInteger(), nullable=False),
            *_account_columns(),
            sa.PrimaryKeyConstraint("id"),
        )
        op.execute(
            f"INSERT INTO _alembic_tmp_account (id, telegram_id, {KEPT}) "
            f"SELECT {numbered}, telegram_id, {KEPT} FROM account"
        )
        op.drop_table("account")
        op.rename_table("_alembic_tmp_account", "account")
    else:
        op.add_column("account", sa.Column("id", sa.Integer(), nullable=True))
        op.execute(
            f"UPDATE account SET id = numbered.n FROM "
            f"(SELECT telegram_id, {numbered} AS n FROM account) AS numbered "
            "WHERE account.telegram_id = numbered.telegram_id"
        )
        # What a SERIAL column (SQLAlchemy's integer key on PostgreSQL) would have made.
        op.execute("CREATE SEQUENCE account_id_seq OWNED BY account.id")
        op.execute("SELECT setval('account_id_seq', COALESCE(MAX(id), 0) + 1, false) FROM account")
        op.alter_column(
            "account",
            "id",
            nullable=False,
            server_default=sa.text("nextval('account_id_seq'::regclass)"),
        )
        op.drop_constraint("account_pkey", "account", type_="primary")
        op.create_primary_key("account_pkey", "account", ["id"])

    op.create_table(
        "identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),
    )
    op.create_index("ix_identity_account", "identity", ["account_id"], unique=False)
    op.execute(
        "INSERT INTO identity (channel, external_id, account_id, created_at) "
        "SELECT 'telegram', CAST(telegram_id AS VARCHAR(64)), id, first_seen FROM account"
    )

    for table, optional, (old_index, new_index), others in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        # Through the identity's unique (channel, external_id): one index look-up a row.
        op.execute(
            f"UPDATE {table} SET account_id = (SELECT identity.account_id FROM identity "
            "WHERE identity.channel = 'telegram' "
            f"AND identity.external_id = CAST({table}.telegram_id AS VARCHAR(64))) "
            "WHERE telegram_id IS NOT NULL"
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_index(old_index)
            if table == "member":
                batch.drop_constraint("uq_member_org_telegram", type_="unique")
            batch.drop_column("telegram_id")
            if not optional:
                batch.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(f"{table}_account_id_fkey", "account", ["account_id"], ["id"])
            if table == "member":
                batch.create_unique_constraint("uq_member_org_account", ["org_id", "account_id"])
            batch.create_index(new_index, ["account_id", *others], unique=False)

    with op.batch_alter_table("account") as batch:
        batch.drop_column("telegram_id")


def downgrade() -> None:
    # Accounts with no Telegram identity have no place in the old shape.
    orphans = (
        "SELECT id FROM account WHERE NOT EXISTS (SELECT 1 FROM identity "
        "WHERE identity.account_id = account.id AND identity.channel = 'telegram')"
    )
    for table in ("consent", "rolegrant", "enrolattempt"):
        op.execute(f"DELETE FROM {table} WHERE account_id IN ({orphans})")
    op.execute(
        f"UPDATE member SET account_id = NULL, enrolled_at = NULL WHERE account_id IN ({orphans})"
    )

    with op.batch_alter_table("account") as batch:
        batch.add_column(sa.Column("telegram_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE account SET telegram_id = (SELECT MIN(CAST(identity.external_id AS BIGINT)) "
        "FROM identity WHERE identity.account_id = account.id "
        "AND identity.channel = 'telegram')"
    )

    for table, optional, (old_index, new_index), others in REFERRING:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("telegram_id", sa.BigInteger(), nullable=True))
        op.execute(
            f"UPDATE {table} SET telegram_id = (SELECT account.telegram_id FROM account "
            f"WHERE account.id = {table}.account_id) WHERE account_id IS NOT NULL"
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_index(new_index)
            if table == "member":
                batch.drop_constraint("uq_member_org_account", type_="unique")
            batch.drop_constraint(f"{table}_account_id_fkey", type_="foreignkey")
            batch.drop_column("account_id")
            if not optional:
                batch.alter_column("telegram_id", existing_type=sa.BigInteger(), nullable=False)
            if table == "member":
                batch.create_unique_constraint("uq_member_org_telegram", ["org_id", "telegram_id"])
            batch.create_index(old_index, ["telegram_id", *others], unique=False)

    op.drop_index("ix_identity_account", table_name="identity")
    op.drop_table("identity")
    op.execute("DELETE FROM account WHERE telegram_id IS NULL")

    if _sqlite():
        op.create_table(
            "_alembic_tmp_account",
            sa.Column("telegram_id", sa.BigInteger(), nullable=False),
            *_account_columns(),
            sa.PrimaryKeyConstraint("telegram_id"),
        )
        op.execute(
            f"INSERT INTO _alembic_tmp_account (telegram_id, {KEPT}) "
            f"SELECT telegram_id, {KEPT} FROM account"
        )
        op.drop_table("account")
        op.rename_table("_alembic_tmp_account", "account")
    else:
        op.drop_constraint("account_pkey", "account", type_="primary")
        op.alter_column("account", "telegram_id", existing_type=sa.BigInteger(), nullable=False)
        op.create_primary_key("account_pkey", "account", ["telegram_id"])
        op.drop_column("account", "id")  # and its sequence, which it owns
