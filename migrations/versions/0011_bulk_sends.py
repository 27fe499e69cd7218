"""bulk sends: a hook's backfill and replay, and the lane of their logs

Revision ID: 0011_bulk_sends
Revises: 0010_retention_runs
Create Date: 2026-12-05 09:00:00.000000

`bulk_sends` holds each backfill (send a hook the existing submissions it
has no log for) and replay (send a hook's finished deliveries again), with
its cursor, so a restarted worker goes on where the last one stopped.
`delivery_logs.bulk_id` names the bulk send that made or restarted a log:
those logs are sent after live ones (docs/backfill.md). NULL for every
existing log. The counter triggers (0003, 0004) are not touched: the new
column changes no count.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0011_bulk_sends"
down_revision = "0010_retention_runs"
branch_labels = None
depends_on = None


def upgrade():
    when = sa.DateTime(timezone=True)
    op.create_table(
        "bulk_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("hook_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("since", when, nullable=True),
        sa.Column("until", when, nullable=False),
        sa.Column("statuses", sa.JSON(), nullable=False),
        sa.Column("upper_id", sa.Integer(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("date_created", when, nullable=False),
        sa.Column("date_modified", when, nullable=False),
        sa.Column("filled_at", when, nullable=True),
        sa.Column("cancelled_at", when, nullable=True),
        sa.Column("finished_at", when, nullable=True),
        sa.Column("succeeded", sa.Integer(), nullable=True),
        sa.Column("failed", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["hook_id"], ["hooks.id"], name=op.f("fk_bulk_sends_hook_id_hooks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bulk_sends")),
        sa.UniqueConstraint("uid", name=op.f("uq_bulk_sends_uid")),
    )
    op.create_index("ix_bulk_sends_hook_created", "bulk_sends", ["hook_id", "date_created"])
    op.create_index("ix_bulk_sends_finished", "bulk_sends", ["finished_at"])
    if op.get_bind().dialect.name == "postgresql":
        # Nullable without a default: no table rewrite, instant on a big table.
        op.add_column("delivery_logs", sa.Column("bulk_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_delivery_logs_bulk_id_bulk_sends",
            "delivery_logs",
            "bulk_sends",
            ["bulk_id"],
            ["id"],
        )
    else:
        # In place, as 0005 does: a batch table copy would drop the counter triggers.
        op.execute(
            "ALTER TABLE delivery_logs ADD COLUMN bulk_id INTEGER"
            " CONSTRAINT fk_delivery_logs_bulk_id_bulk_sends REFERENCES bulk_sends (id)"
        )
    # Partial: live logs (bulk_id NULL, nearly all of them) cost the index nothing.
    op.create_index(
        "ix_delivery_logs_bulk_status",
        "delivery_logs",
        ["bulk_id", "status"],
        postgresql_where=sa.text("bulk_id IS NOT NULL"),
        sqlite_where=sa.text("bulk_id IS NOT NULL"),
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_delivery_logs_bulk_status", table_name="delivery_logs")
    if postgresql:
        op.drop_constraint("fk_delivery_logs_bulk_id_bulk_sends", "delivery_logs")
    op.execute("ALTER TABLE delivery_logs DROP COLUMN bulk_id")
    op.drop_index("ix_bulk_sends_finished", table_name="bulk_sends")
    op.drop_index("ix_bulk_sends_hook_created", table_name="bulk_sends")
    op.drop_table("bulk_sends")
