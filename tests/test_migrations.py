"""The Alembic migrations: one head, and the schema they build is the models'."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from tests import previous_release as previous
from tests.admin.admin_support import Browser
from tests.helpers import SECRET_KEY, run_worker
from webapp.delivery.sweeper import sweep_due_logs
from webapp.extensions import db
from webapp.models import Form, Hook, hourly_log_counts

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def test_one_alembic_head():
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
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


def test_a_database_of_the_previous_release_upgrades_with_everything_in_it(
    empty_database, redis_server, endpoint, tmp_path
):
    """docs/deploy.md, "Upgrading": `flask db upgrade` (the release line) on a database
    the previous release filled, then the current app reads, counts and sends it all."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": empty_database[1],
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": SECRET_KEY,
            "ENCRYPTION_KEY": previous.ENCRYPTION_KEY,
            "FORMHOOKS_INSTANCE_PATH": str(tmp_path),
            "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8",
            "DELIVERY_TIMEOUT": "5",
            "MAIL_SERVER": "",
        }
    )
    app.extensions["formhooks.redis"].flushdb()
    try:
        with app.app_context():
            upgrade(revision=previous.REVISION)
            with db.engine.begin() as conn:
                previous.fill(conn, endpoint.url)
            upgrade()
            with db.engine.connect() as conn:
                heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
                assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
        _check_upgraded(app)
        # The users: a lock of the old per-account kind is gone, the password works.
        assert Browser(app.test_client()).login("alice@example.org").status_code == 302

        # The due log is sent by the new release, with the decrypted credentials.
        with app.app_context():
            assert sweep_due_logs() == 1
        run_worker(app)
        [sent] = endpoint.wait_for(1)
        assert json.loads(sent["body"]) == {
            "source": "formhooks",
            "data": {"name": "Amina Yusuf", "members": 3, "meta": {"instanceID": "uuid:s4"}},
        }
        credentials = base64.b64encode(f"crm:{previous.HOOK_PASSWORD}".encode()).decode()
        assert sent["headers"]["Authorization"] == f"Basic {credentials}"
        assert sent["headers"]["X-Api-Key"] == previous.HOOK_HEADERS["X-Api-Key"]
        # An old ingest token takes a new submission, sent to its form's hook.
        client = app.test_client()
        water = "aWaterPoints0000000001"
        posted = client.post(
            f"/api/v1/forms/{water}/submissions",
            json={"pump": "broken", "meta": {"instanceID": "uuid:w2"}},
            headers={"Authorization": f"Bearer {previous.INGEST_TOKENS[water]}"},
        )
        assert posted.status_code == 201, posted.text
        run_worker(app)
        assert len(endpoint.wait_for(2)) == 2
        counts = _api(app, "GET", f"/api/v1/forms/{water}/hooks")["results"]
        assert [(h["success_count"], h["pending_count"]) for h in counts] == [(1, 1)]
        crm = _api(app, "GET", "/api/v1/forms/aHouseholdSurvey000001/hooks")
        crm_counts = {h["uid"]: (h["success_count"], h["pending_count"]) for h in crm["results"]}
        assert crm_counts["hCrm000000000000000001"] == (3, 0)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _api(app, method: str, path: str) -> dict:
    """The API as the previous release's admin, with the token that release issued."""
    answer = app.test_client().open(
        path, method=method, headers={"Authorization": f"Token {previous.API_TOKEN}"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json


def _check_upgraded(app) -> None:
    """Counters exact, logs listed with attempts, edits shown, secrets decrypted."""
    forms = _api(app, "GET", "/api/v1/forms")["results"]
    assert {f["uid"]: f["submission_count"] for f in forms} == previous.FORM_SUBMISSIONS
    hooks = {}
    for uid in previous.FORM_SUBMISSIONS:
        for hook in _api(app, "GET", f"/api/v1/forms/{uid}/hooks")["results"]:
            hooks[hook["uid"]] = {
                status: hook[f"{status}_count"] for status in ("success", "failed", "pending")
            }
    assert hooks == previous.HOOK_COUNTS
    with app.app_context():
        hours = hourly_log_counts(datetime(2026, 11, 20, tzinfo=UTC))
        assert {
            hour.strftime("%Y-%m-%d %H:%M"): {status: n for status, n in counts.items() if n}
            for hour, counts in hours.items()
        } == previous.HOUR_COUNTS
        # Stored secrets still decrypt.
        crm = db.session.scalar(select(Hook).where(Hook.name == "CRM"))
        assert (crm.password, crm.custom_headers) == (previous.HOOK_PASSWORD, previous.HOOK_HEADERS)
        tokens = {form.uid: form.ingest_token for form in db.session.scalars(select(Form))}
        assert tokens == previous.INGEST_TOKENS
        db.session.remove()
    # Logs are listed with their attempts.
    household = "/api/v1/forms/aHouseholdSurvey000001/hooks/hCrm000000000000000001/logs"
    logs = _api(app, "GET", household)["results"]
    assert sorted(log["status"] for log in logs) == ["failed", "pending", "success", "success"]
    detail = _api(app, "GET", f"{household}/hlFailedUnreported0001")
    assert [a["outcome"] for a in detail["attempts"]] == ["error"] * 4
    # A submission edited in place by that release shows its edit.
    listed = _api(app, "GET", "/api/v1/forms/aHouseholdSurvey000001/submissions")
    [edited] = [s for s in listed["results"] if s["instance_id"] == previous.EDITED]
    assert (edited["data"]["members"], edited["edit_count"], edited["versions"]) == (3, 1, 1)


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
            "DATABASE_URL": empty_database[1],
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
