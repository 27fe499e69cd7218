"""sources: forms whose submissions are pulled from an ODK Central server

Revision ID: 0008_central_sources
Revises: 0007_admin_sessions
Create Date: 2026-11-30 03:30:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0008_central_sources"
down_revision = "0007_admin_sessions"
branch_labels = None
depends_on = None


def upgrade():
    when = sa.DateTime(timezone=True)
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("xml_form_id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=False),
        sa.Column("since", when, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("send_backfill", sa.Boolean(), nullable=False),
        sa.Column("connected_at", when, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_since", when, nullable=True),
        sa.Column("error_reported_at", when, nullable=True),
        sa.Column("error_report_claimed_until", when, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", when, nullable=True),
        sa.Column("next_poll_at", when, nullable=False),
        sa.Column("received_count", sa.Integer(), nullable=False),
        sa.Column("created_cursor", when, nullable=True),
        sa.Column("updated_cursor", when, nullable=True),
        sa.Column("lease_owner", sa.String(length=32), nullable=True),
        sa.Column("leased_until", when, nullable=True),
        sa.Column("session_token_encrypted", sa.Text(), nullable=True),
        sa.Column("session_expires_at", when, nullable=True),
        sa.Column("date_created", when, nullable=False),
        sa.Column("date_modified", when, nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"], ["forms.id"], name=op.f("fk_sources_form_id_forms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sources")),
        sa.UniqueConstraint("form_id", name=op.f("uq_sources_form_id")),
        sa.UniqueConstraint("uid", name=op.f("uq_sources_uid")),
    )
    op.create_index("ix_sources_next_poll_at", "sources", ["next_poll_at"])


def downgrade():
    op.drop_index("ix_sources_next_poll_at", table_name="sources")
    op.drop_table("sources")
