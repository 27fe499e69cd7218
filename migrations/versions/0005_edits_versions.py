"""versions of submissions (edits) and hooks' send_edits

Revision ID: 0005_edits_versions
Revises: 0004_form_and_hour_counts
Create Date: 2026-12-02 10:00:00.000000

A row of `submissions` becomes one version of a submission: `root_id`
points at the row the submission was created with (NULL on that row),
`root_instance_id` is that row's instance id (backfilled: every stored
row is a submission of its own), `deprecated_id` the instance id a version
replaces, `position` orders the versions, and `received` is false for a
placeholder (an instance id named by an edit, not received yet).
`hooks.send_edits` (default false) says whether edits are sent.

The form submission counters (0004) count submissions, not versions: their
triggers now take only rows with `root_id` NULL. Nothing else changes in
the counts, as every stored row is such a row.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005_edits_versions"
down_revision = "0004_form_and_hour_counts"
branch_labels = None
depends_on = None

# As 0004's _PG_FORM_ADD: add the (form, n) pairs of `rows` to the form's counter.
_PG_FORM_ADD = """
        INSERT INTO form_submission_counts AS c (form_id, shard, n)
        SELECT d.form_id, hook_status_counts_shard(), d.n
        FROM ({rows}) AS d
        WHERE d.n <> 0 AND EXISTS (SELECT 1 FROM forms WHERE forms.id = d.form_id)
        ORDER BY d.form_id
        ON CONFLICT (form_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
"""


def _pg_functions(where: str) -> list[str]:
    """0004's three form counter functions, counting the rows that match `where`."""
    bodies = {
        "insert": f"SELECT form_id, count(*) AS n FROM new_rows {where} GROUP BY form_id",
        "delete": f"SELECT form_id, -count(*) AS n FROM old_rows {where} GROUP BY form_id",
        "update": "SELECT form_id, sum(delta) AS n FROM ("
        f"SELECT form_id, 1 AS delta FROM new_rows {where}"
        f" UNION ALL SELECT form_id, -1 FROM old_rows {where}) AS r GROUP BY form_id",
    }
    return [
        f"""
    CREATE OR REPLACE FUNCTION form_submission_counts_{event}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
    {_PG_FORM_ADD.format(rows=rows)}
        RETURN NULL;
    END $$
    """
        for event, rows in bodies.items()
    ]


_SQLITE_FORM_ADD = """
    INSERT INTO form_submission_counts (form_id, shard, n)
    SELECT {form}, 0, {n} WHERE EXISTS (SELECT 1 FROM forms WHERE id = {form})
    ON CONFLICT (form_id, shard) DO UPDATE SET n = n + excluded.n;
"""


def _sqlite_triggers(roots_only: bool) -> list[str]:
    """0004's form counter triggers, on every row or on submissions' own rows only."""
    new_root = " AND NEW.root_id IS NULL" if roots_only else ""
    old_root = " AND OLD.root_id IS NULL" if roots_only else ""
    return [
        "DROP TRIGGER IF EXISTS form_submission_counts_insert",
        "DROP TRIGGER IF EXISTS form_submission_counts_update",
        "DROP TRIGGER IF EXISTS form_submission_counts_delete",
        f"""
    CREATE TRIGGER form_submission_counts_insert AFTER INSERT ON submissions
    WHEN 1{new_root}
    BEGIN
    {_SQLITE_FORM_ADD.format(form="NEW.form_id", n=1)}
    END
    """,
        f"""
    CREATE TRIGGER form_submission_counts_update AFTER UPDATE OF form_id ON submissions
    WHEN OLD.form_id IS NOT NEW.form_id{new_root}
    BEGIN
    {_SQLITE_FORM_ADD.format(form="OLD.form_id", n=-1)}
    {_SQLITE_FORM_ADD.format(form="NEW.form_id", n=1)}
    END
    """,
        f"""
    CREATE TRIGGER form_submission_counts_delete AFTER DELETE ON submissions
    WHEN 1{old_root}
    BEGIN
    {_SQLITE_FORM_ADD.format(form="OLD.form_id", n=-1)}
    END
    """,
    ]


def upgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column(
        "hooks",
        sa.Column("send_edits", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    if postgresql:
        op.add_column("submissions", sa.Column("root_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_submissions_root_id_submissions",
            "submissions",
            "submissions",
            ["root_id"],
            ["id"],
        )
    else:
        # SQLite adds a column with its foreign key in place (no table copy, which
        # would drop the counter triggers and, foreign keys on, cascade to the
        # logs). It reflects no ON DELETE of such a key: the models state none.
        op.execute(
            "ALTER TABLE submissions ADD COLUMN root_id INTEGER"
            " CONSTRAINT fk_submissions_root_id_submissions REFERENCES submissions (id)"
        )
    op.add_column(
        "submissions",
        sa.Column("root_instance_id", sa.String(255), nullable=False, server_default=""),
    )
    op.add_column("submissions", sa.Column("deprecated_id", sa.String(255), nullable=True))
    op.add_column(
        "submissions", sa.Column("position", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "submissions",
        sa.Column("received", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.execute("UPDATE submissions SET root_instance_id = instance_id")
    op.create_index("ix_submissions_root", "submissions", ["root_id"])
    for statement in _pg_functions("WHERE root_id IS NULL") if postgresql else _sqlite_triggers(
        True
    ):
        op.execute(statement)


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    # Versions other than each submission's first cannot be kept: each was a
    # submission of its own before, and would be sent as one.
    op.execute("DELETE FROM submissions WHERE root_id IS NOT NULL")
    for statement in _pg_functions("") if postgresql else _sqlite_triggers(False):
        op.execute(statement)
    op.drop_index("ix_submissions_root", table_name="submissions")
    if postgresql:
        op.drop_constraint("fk_submissions_root_id_submissions", "submissions")
    for column in ("root_id", "root_instance_id", "deprecated_id", "position", "received"):
        op.execute(f"ALTER TABLE submissions DROP COLUMN {column}")
    op.execute("ALTER TABLE hooks DROP COLUMN send_edits")
