"""The Alembic migrations: one head, and the schema they build is the models'."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of a new, empty database of each kind (dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.sqlite3'}"
        return
    import uuid

    import psycopg

    from tests.conftest import _pg_unavailable_reason
    from tests.helpers import PG_ADMIN_URL

    reason = _pg_unavailable_reason()
    if reason is not None:
        pytest.skip(f"PostgreSQL half skipped: {reason}")
    name = f"fh_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_signing_migration_gives_each_existing_hook_its_own_secret(empty_database, tmp_path):
    """0009 runs inside the app (`flask db upgrade`): it encrypts with the app's key."""
    from datetime import UTC, datetime

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import MetaData, Table, insert, select, text

    from tests.helpers import SECRET_KEY
    from webapp import create_app
    from webapp.delivery.signatures import secret_key
    from webapp.models import Hook

    app = create_app(
        {
            "DATABASE_URL": empty_database,
            "SECRET_KEY": SECRET_KEY,
            "ENCRYPTION_KEY": "the migration's key",
            "FORMHOOKS_INSTANCE_PATH": str(tmp_path),
        }
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with app.app_context():
        upgrade(revision="0008_central_sources")
        with db.engine.begin() as conn:
            tables = MetaData()
            users, forms, hooks = (
                Table(name, tables, autoload_with=conn) for name in ("users", "forms", "hooks")
            )
            conn.execute(
                insert(users).values(
                    id=1, email="a@example.org", password_hash="x", role="admin",
                    is_active=True, report_opt_in=True, date_joined=now,
                )
            )  # fmt: skip
            conn.execute(
                insert(forms).values(
                    id=1, uid="aX", name="F", owner_id=1, ingest_token_hash="h",
                    ingest_token_encrypted="e", date_created=now, date_modified=now,
                )
            )  # fmt: skip
            for number in (1, 2, 3):
                conn.execute(
                    insert(hooks).values(
                        id=number, uid=f"h{number}", form_id=1, name="H",
                        endpoint="https://example.org/h", active=True, export_type="json",
                        auth_level="no_auth", username="", subset_fields=[],
                        email_notification=True, notification_emails=[], send_edits=False,
                        date_created=now, date_modified=now,
                    )
                )  # fmt: skip
        upgrade()
        secrets = [hook.signing_secret for hook in db.session.scalars(select(Hook))]
        assert len(secrets) == 3 and len(set(secrets)) == 3
        assert all(len(secret_key(secret)) == 32 for secret in secrets)
        with db.engine.connect() as conn:
            stored = conn.execute(text("SELECT signing_secret_encrypted FROM hooks")).scalars()
            assert not any(secret in value for value in stored for secret in secrets)
        db.session.remove()
        downgrade(revision="0008_central_sources")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM hooks")).scalar() == 3
        upgrade()
        db.engine.dispose()
