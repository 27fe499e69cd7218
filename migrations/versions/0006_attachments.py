"""attachments of submissions, stored in chunks in the database

Revision ID: 0006_attachments
Revises: 0005_edits_versions
Create Date: 2026-12-03 10:00:00.000000

`attachments` holds one row per file of a version (a row of `submissions`),
unique by file name in that version; `attachment_chunks` its bytes, in rows
of at most 256 KB. Both cascade from the submission (docs/attachments.md).
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_attachments"
down_revision = "0005_edits_versions"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column(
            "submission_id",
            sa.Integer(),
            sa.ForeignKey("submissions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("mimetype", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("uid", name="uq_attachments_uid"),
        sa.UniqueConstraint("submission_id", "filename", name="uq_attachments_submission_filename"),
    )
    op.create_index("ix_attachments_submission_id", "attachments", ["submission_id"])
    op.create_table(
        "attachment_chunks",
        sa.Column(
            "attachment_id",
            sa.Integer(),
            sa.ForeignKey("attachments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade():
    op.drop_table("attachment_chunks")
    op.drop_index("ix_attachments_submission_id", table_name="attachments")
    op.drop_table("attachments")
