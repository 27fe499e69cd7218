"""The Alembic migrations: one head, and the schema they build is the models'."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from webapp.extensions import db

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def test_one_alembic_head():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, f"several heads, merge them: {heads}"


def test_migrated_schema_matches_the_models(ctx):
    """`flask db upgrade` (run by the fixtures on SQLite and PostgreSQL) builds the models."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_the_admin_sessions_migration_keeps_users_and_their_rows(tmp_path):
    """0006 drops two users columns in place: on SQLite (foreign keys on) a batch
    table copy fails on the forms' foreign key (and would cascade-delete API tokens)."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from tests.helpers import SECRET_KEY
    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
            "SECRET_KEY": SECRET_KEY,
            "FORMHOOKS_INSTANCE_PATH": str(tmp_path),
        }
    )
    with app.app_context():
        upgrade(revision="0006_attachments")
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role, is_active, report_opt_in,"
                    " failed_logins, date_joined) VALUES (1, 'a@example.org', 'x', 'admin', 1, 1,"
                    " 3, '2026-01-01 00:00:00')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO forms (id, uid, name, owner_id, ingest_token_hash,"
                    " ingest_token_encrypted, date_created, date_modified) VALUES (1, 'aX', 'F',"
                    " 1, 'h', 'e', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM forms")).scalar() == 1
            assert conn.execute(text("SELECT email FROM users")).scalar() == "a@example.org"
        downgrade(revision="0006_attachments")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT failed_logins FROM users")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM forms")).scalar() == 1
        db.engine.dispose()
