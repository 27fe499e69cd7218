"""retention runs: what each run of the retention job did (webapp.retention)

Revision ID: 0010_retention_runs
Revises: 0009_hook_signing_secrets
Create Date: 2026-12-01 09:00:00.000000

One row per run of the job that deletes old submissions
(SUBMISSION_RETENTION_DAYS) and old delivery attempts (LOG_RETENTION_DAYS);
the dashboard shows the newest. No index is added: the job walks the
existing (form_id, created_at) index of submissions and the primary key of
delivery_attempts.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0010_retention_runs"
down_revision = "0009_hook_signing_secrets"
branch_labels = None
depends_on = None

COUNTS = (
    "submissions_deleted",
    "logs_deleted",
    "files_deleted",
    "attempts_deleted",
    "kept_pending",
    "kept_recent",
    "kept_busy",
)


def upgrade():
    when = sa.DateTime(timezone=True)
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("finished_at", when, nullable=True),
        sa.Column("submission_days", sa.Integer(), nullable=True),
        sa.Column("log_days", sa.Integer(), nullable=True),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )


def downgrade():
    op.drop_table("retention_runs")
