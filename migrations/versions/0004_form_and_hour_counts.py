"""form submission and hourly log counters, kept by triggers

Revision ID: 0004_form_and_hour_counts
Revises: 0003_hook_status_counts
Create Date: 2026-11-28 18:00:00.000000

Two more counters in the manner of 0003, so that no page counts rows:

- `form_submission_counts`: per form, its number of submissions (the forms
  list, a form's page, the submissions page, the API's submission_count).
- `log_hour_counts`: per UTC hour of creation and status, the number of
  delivery logs (the dashboard's last 24 hours, 7 days and daily chart).
  Deleted logs (a hook, form or submission deleted) are taken off.

PostgreSQL: statement-level triggers with transition tables, each writing
transaction adding to the shard it leases through 0003's
hook_status_counts_shard(). SQLite: row-level triggers on shard 0.

The SQL lives here on purpose, frozen with the migration that installs it
(migrations import no app code); change it with a new migration.
"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004_form_and_hour_counts"
down_revision = "0003_hook_status_counts"
branch_labels = None
depends_on = None

# Add the (form, n) pairs of `rows` to the form's counter, skipping forms deleted
# in this transaction (their counters went with them, by the foreign key).
_PG_FORM_ADD = """
        INSERT INTO form_submission_counts AS c (form_id, shard, n)
        SELECT d.form_id, hook_status_counts_shard(), d.n
        FROM ({rows}) AS d
        WHERE d.n <> 0 AND EXISTS (SELECT 1 FROM forms WHERE forms.id = d.form_id)
        ORDER BY d.form_id
        ON CONFLICT (form_id, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
"""
# Add the (hour, status, n) triples of `rows` to the hourly counters.
_PG_HOUR_ADD = """
        INSERT INTO log_hour_counts AS c (hour, status, shard, n)
        SELECT d.hour, d.status, hook_status_counts_shard(), d.n
        FROM ({rows}) AS d
        WHERE d.n <> 0
        ORDER BY d.hour, d.status
        ON CONFLICT (hour, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
"""
_HOUR = "date_trunc('hour', date_created, 'UTC')"


def _pg_function(name: str, body: str) -> str:
    return f"""
    CREATE FUNCTION {name}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
    {body}
        RETURN NULL;
    END $$
    """


def _pg_trigger(name: str, event: str, table: str, transition: str) -> str:
    return f"""
    CREATE TRIGGER {name} AFTER {event} ON {table}
    {transition}
    FOR EACH STATEMENT EXECUTE FUNCTION {name}()
    """


POSTGRESQL_UP = [
    _pg_function(
        "form_submission_counts_insert",
        _PG_FORM_ADD.format(rows="SELECT form_id, count(*) AS n FROM new_rows GROUP BY form_id"),
    ),
    _pg_function(
        "form_submission_counts_delete",
        _PG_FORM_ADD.format(rows="SELECT form_id, -count(*) AS n FROM old_rows GROUP BY form_id"),
    ),
    _pg_function(
        "form_submission_counts_update",
        _PG_FORM_ADD.format(
            rows="SELECT form_id, sum(delta) AS n FROM (SELECT form_id, 1 AS delta FROM new_rows"
            " UNION ALL SELECT form_id, -1 FROM old_rows) AS r GROUP BY form_id"
        ),
    ),
    _pg_function("form_submission_counts_truncate", "DELETE FROM form_submission_counts;"),
    _pg_function(
        "log_hour_counts_insert",
        _PG_HOUR_ADD.format(
            rows=f"SELECT {_HOUR} AS hour, status, count(*) AS n FROM new_rows GROUP BY 1, 2"
        ),
    ),
    _pg_function(
        "log_hour_counts_delete",
        _PG_HOUR_ADD.format(
            rows=f"SELECT {_HOUR} AS hour, status, -count(*) AS n FROM old_rows GROUP BY 1, 2"
        ),
    ),
    # Updates that change neither status nor date_created (leases, messages,
    # tries) aggregate to nothing and write nothing.
    _pg_function(
        "log_hour_counts_update",
        _PG_HOUR_ADD.format(
            rows=f"SELECT {_HOUR} AS hour, status, sum(delta) AS n"
            f" FROM (SELECT date_created, status, 1 AS delta FROM new_rows"
            f" UNION ALL SELECT date_created, status, -1 FROM old_rows) AS r GROUP BY 1, 2"
        ),
    ),
    _pg_function("log_hour_counts_truncate", "DELETE FROM log_hour_counts;"),
]
for _table, _prefix in (
    ("submissions", "form_submission_counts"),
    ("delivery_logs", "log_hour_counts"),
):
    POSTGRESQL_UP += [
        _pg_trigger(f"{_prefix}_insert", "INSERT", _table, "REFERENCING NEW TABLE AS new_rows"),
        _pg_trigger(f"{_prefix}_delete", "DELETE", _table, "REFERENCING OLD TABLE AS old_rows"),
        _pg_trigger(
            f"{_prefix}_update",
            "UPDATE",
            _table,
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
        ),
        _pg_trigger(f"{_prefix}_truncate", "TRUNCATE", _table, ""),
    ]

POSTGRESQL_DOWN = [
    statement
    for _table, _prefix in (
        ("submissions", "form_submission_counts"),
        ("delivery_logs", "log_hour_counts"),
    )
    for _event in ("insert", "delete", "update", "truncate")
    for statement in (
        f"DROP TRIGGER IF EXISTS {_prefix}_{_event} ON {_table}",
        f"DROP FUNCTION IF EXISTS {_prefix}_{_event}()",
    )
]

_SQLITE_FORM_ADD = """
    INSERT INTO form_submission_counts (form_id, shard, n)
    SELECT {form}, 0, {n} WHERE EXISTS (SELECT 1 FROM forms WHERE id = {form})
    ON CONFLICT (form_id, shard) DO UPDATE SET n = n + excluded.n;
"""
# SQLite keeps timestamps as naive UTC text ('2026-11-28 17:05:09.123456').
_SQLITE_HOUR_ADD = """
    INSERT INTO log_hour_counts (hour, status, shard, n)
    VALUES (strftime('%Y-%m-%d %H:00:00.000000', {created}), {status}, 0, {n})
    ON CONFLICT (hour, status, shard) DO UPDATE SET n = n + excluded.n;
"""

SQLITE_UP = [
    f"""
    CREATE TRIGGER form_submission_counts_insert AFTER INSERT ON submissions
    BEGIN
    {_SQLITE_FORM_ADD.format(form="NEW.form_id", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER form_submission_counts_update AFTER UPDATE OF form_id ON submissions
    WHEN OLD.form_id IS NOT NEW.form_id
    BEGIN
    {_SQLITE_FORM_ADD.format(form="OLD.form_id", n=-1)}
    {_SQLITE_FORM_ADD.format(form="NEW.form_id", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER form_submission_counts_delete AFTER DELETE ON submissions
    BEGIN
    {_SQLITE_FORM_ADD.format(form="OLD.form_id", n=-1)}
    END
    """,
    f"""
    CREATE TRIGGER log_hour_counts_insert AFTER INSERT ON delivery_logs
    BEGIN
    {_SQLITE_HOUR_ADD.format(created="NEW.date_created", status="NEW.status", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER log_hour_counts_update AFTER UPDATE OF status, date_created ON delivery_logs
    WHEN OLD.status IS NOT NEW.status OR OLD.date_created IS NOT NEW.date_created
    BEGIN
    {_SQLITE_HOUR_ADD.format(created="OLD.date_created", status="OLD.status", n=-1)}
    {_SQLITE_HOUR_ADD.format(created="NEW.date_created", status="NEW.status", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER log_hour_counts_delete AFTER DELETE ON delivery_logs
    BEGIN
    {_SQLITE_HOUR_ADD.format(created="OLD.date_created", status="OLD.status", n=-1)}
    END
    """,
]

SQLITE_DOWN = [
    f"DROP TRIGGER IF EXISTS {prefix}_{event}"
    for prefix in ("form_submission_counts", "log_hour_counts")
    for event in ("insert", "update", "delete")
]


def upgrade():
    op.create_table(
        "form_submission_counts",
        sa.Column("form_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["forms.id"],
            name=op.f("fk_form_submission_counts_form_id_forms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("form_id", "shard", name=op.f("pk_form_submission_counts")),
    )
    op.create_table(
        "log_hour_counts",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "status", "shard", name=op.f("pk_log_hour_counts")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # Nothing is written between the backfill and the triggers taking over.
        op.execute("LOCK TABLE submissions, delivery_logs IN SHARE ROW EXCLUSIVE MODE")
    for statement in POSTGRESQL_UP if postgresql else SQLITE_UP:
        op.execute(statement)
    hour = _HOUR if postgresql else "strftime('%Y-%m-%d %H:00:00.000000', date_created)"
    op.execute(
        "INSERT INTO form_submission_counts (form_id, shard, n)"
        " SELECT form_id, 0, count(*) FROM submissions GROUP BY form_id"
    )
    op.execute(
        "INSERT INTO log_hour_counts (hour, status, shard, n)"
        f" SELECT {hour}, status, 0, count(*) FROM delivery_logs GROUP BY 1, 2"
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DOWN if postgresql else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("log_hour_counts")
    op.drop_table("form_submission_counts")
