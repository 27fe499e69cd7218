"""admin sessions: revocable login sessions, login throttles per address and account

Sessions become rows (deleted at logout and on a password change); failed
logins are counted per (client address, account) and per address instead of
per account, so the two per-account lock columns go.

Revision ID: 0007_admin_sessions
Revises: 0006_attachments
Create Date: 2026-11-30 03:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0007_admin_sessions"
down_revision = "0006_attachments"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
    )
    op.create_index(
        op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False
    )
    op.create_table(
        "login_throttles",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("address", "account", name=op.f("pk_login_throttles")),
    )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: with
    # foreign keys on, dropping the old `users` fails on forms.owner_id (and
    # would cascade-delete API tokens).
    op.drop_column("users", "locked_until")
    op.drop_column("users", "failed_logins")


def downgrade():
    op.add_column(
        "users", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.drop_table("login_throttles")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
