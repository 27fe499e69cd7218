"""hook status counters: per-hook log counts kept by triggers on delivery_logs

Revision ID: 0003_hook_status_counts
Revises: 0002_reports
Create Date: 2026-11-30 09:00:00.000000

`hook_status_counts` holds, per hook and status, counts in a few shards; a
hook's count of a status is the sum of its shards. Triggers on delivery_logs
keep it exact in the transaction that changes the logs, whatever the code
path (ingest, engine, retries, cascades from hooks, forms and submissions,
plain SQL), so the panel and the API read it instead of counting logs.

PostgreSQL: statement-level triggers with transition tables, one upsert per
statement. Each writing transaction leases a shard of its own for its whole
life (a transaction-level advisory lock on one of 64 slots), so concurrent
transactions never wait on, nor deadlock over, a counter row; only when all
64 slots are taken do transactions share one (they may then wait).
SQLite (one writer at a time): row-level triggers on shard 0.

The SQL lives here on purpose, frozen with the migration that installs it
(migrations import no app code); change it with a new migration.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003_hook_status_counts'
down_revision = '0002_reports'
branch_labels = None
depends_on = None

SLOTS = 64
# The advisory-lock key space of the shard leases: pg_try_advisory_xact_lock(LOCK_CLASS, slot).
LOCK_CLASS = 1179141187  # 'FHSC' as an int4

POSTGRESQL_UP = [
    f"""
    CREATE FUNCTION hook_status_counts_shard() RETURNS smallint
    LANGUAGE plpgsql VOLATILE AS $$
    -- The shard of this transaction: leased on first use, kept until commit or rollback.
    DECLARE
        held text := current_setting('formhooks.hook_status_shard', true);
        start int := pg_backend_pid() % {SLOTS};
        slot int;
    BEGIN
        IF held IS NOT NULL AND held <> '' THEN
            RETURN held::smallint;
        END IF;
        FOR i IN 0..{SLOTS - 1} LOOP
            slot := (start + i) % {SLOTS};
            IF pg_try_advisory_xact_lock({LOCK_CLASS}, slot) THEN
                PERFORM set_config('formhooks.hook_status_shard', slot::text, true);
                RETURN slot;
            END IF;
        END LOOP;
        -- Every slot is leased: share one (its rows' locks may make us wait).
        PERFORM set_config('formhooks.hook_status_shard', start::text, true);
        RETURN start;
    END $$
    """,
    """
    CREATE FUNCTION hook_status_counts_after_insert() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO hook_status_counts AS c (hook_id, status, shard, n)
        SELECT d.hook_id, d.status, hook_status_counts_shard(), d.n
        FROM (SELECT hook_id, status, count(*) AS n FROM new_rows
              GROUP BY hook_id, status ORDER BY hook_id, status) AS d
        ON CONFLICT (hook_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        RETURN NULL;
    END $$
    """,
    # Updates that change neither status nor hook_id (leases, messages, tries)
    # aggregate to nothing and write nothing. Rows of a hook deleted in this
    # transaction (a cascade) are skipped: its counters went with it.
    """
    CREATE FUNCTION hook_status_counts_after_update() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO hook_status_counts AS c (hook_id, status, shard, n)
        SELECT d.hook_id, d.status, hook_status_counts_shard(), d.n
        FROM (SELECT hook_id, status, sum(delta) AS n
              FROM (SELECT hook_id, status, 1 AS delta FROM new_rows
                    UNION ALL
                    SELECT hook_id, status, -1 FROM old_rows) AS rows
              GROUP BY hook_id, status HAVING sum(delta) <> 0
              ORDER BY hook_id, status) AS d
        WHERE EXISTS (SELECT 1 FROM hooks WHERE hooks.id = d.hook_id)
        ON CONFLICT (hook_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION hook_status_counts_after_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO hook_status_counts AS c (hook_id, status, shard, n)
        SELECT d.hook_id, d.status, hook_status_counts_shard(), -d.n
        FROM (SELECT hook_id, status, count(*) AS n FROM old_rows
              GROUP BY hook_id, status ORDER BY hook_id, status) AS d
        WHERE EXISTS (SELECT 1 FROM hooks WHERE hooks.id = d.hook_id)
        ON CONFLICT (hook_id, status, shard) DO UPDATE SET n = c.n + EXCLUDED.n;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION hook_status_counts_after_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM hook_status_counts;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER hook_status_counts_insert AFTER INSERT ON delivery_logs
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hook_status_counts_after_insert()
    """,
    """
    CREATE TRIGGER hook_status_counts_update AFTER UPDATE ON delivery_logs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hook_status_counts_after_update()
    """,
    """
    CREATE TRIGGER hook_status_counts_delete AFTER DELETE ON delivery_logs
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION hook_status_counts_after_delete()
    """,
    """
    CREATE TRIGGER hook_status_counts_truncate AFTER TRUNCATE ON delivery_logs
    FOR EACH STATEMENT EXECUTE FUNCTION hook_status_counts_after_truncate()
    """,
]

POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS hook_status_counts_truncate ON delivery_logs",
    "DROP TRIGGER IF EXISTS hook_status_counts_delete ON delivery_logs",
    "DROP TRIGGER IF EXISTS hook_status_counts_update ON delivery_logs",
    "DROP TRIGGER IF EXISTS hook_status_counts_insert ON delivery_logs",
    "DROP FUNCTION IF EXISTS hook_status_counts_after_truncate()",
    "DROP FUNCTION IF EXISTS hook_status_counts_after_delete()",
    "DROP FUNCTION IF EXISTS hook_status_counts_after_update()",
    "DROP FUNCTION IF EXISTS hook_status_counts_after_insert()",
    "DROP FUNCTION IF EXISTS hook_status_counts_shard()",
]

# Add `n` to the (hook, status) counter of shard 0; nothing when the hook is
# gone (its counters were deleted with it by the cascade).
_SQLITE_ADD = """
    INSERT INTO hook_status_counts (hook_id, status, shard, n)
    SELECT {hook}, {status}, 0, {n} WHERE EXISTS (SELECT 1 FROM hooks WHERE id = {hook})
    ON CONFLICT (hook_id, status, shard) DO UPDATE SET n = n + excluded.n;
"""

SQLITE_UP = [
    f"""
    CREATE TRIGGER hook_status_counts_insert AFTER INSERT ON delivery_logs
    BEGIN
    {_SQLITE_ADD.format(hook="NEW.hook_id", status="NEW.status", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER hook_status_counts_update AFTER UPDATE OF status, hook_id ON delivery_logs
    WHEN OLD.status IS NOT NEW.status OR OLD.hook_id IS NOT NEW.hook_id
    BEGIN
    {_SQLITE_ADD.format(hook="OLD.hook_id", status="OLD.status", n=-1)}
    {_SQLITE_ADD.format(hook="NEW.hook_id", status="NEW.status", n=1)}
    END
    """,
    f"""
    CREATE TRIGGER hook_status_counts_delete AFTER DELETE ON delivery_logs
    BEGIN
    {_SQLITE_ADD.format(hook="OLD.hook_id", status="OLD.status", n=-1)}
    END
    """,
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS hook_status_counts_delete",
    "DROP TRIGGER IF EXISTS hook_status_counts_update",
    "DROP TRIGGER IF EXISTS hook_status_counts_insert",
]


def upgrade():
    op.create_table('hook_status_counts',
    sa.Column('hook_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('shard', sa.SmallInteger(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['hook_id'], ['hooks.id'], name=op.f('fk_hook_status_counts_hook_id_hooks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('hook_id', 'status', 'shard', name=op.f('pk_hook_status_counts'))
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        # No log is written between the backfill and the triggers taking over.
        op.execute("LOCK TABLE delivery_logs IN SHARE ROW EXCLUSIVE MODE")
    for statement in POSTGRESQL_UP if postgresql else SQLITE_UP:
        op.execute(statement)
    op.execute(
        "INSERT INTO hook_status_counts (hook_id, status, shard, n)"
        " SELECT hook_id, status, 0, count(*) FROM delivery_logs GROUP BY hook_id, status"
    )


def downgrade():
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_DOWN if postgresql else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table('hook_status_counts')
