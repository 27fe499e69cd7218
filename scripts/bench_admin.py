"""Benchmark the admin panel's logs page with 100,000 logs on one hook.

    .venv/bin/python scripts/bench_admin.py [--logs 100000] [--runs 15] [--postgres URL]

Builds a throw-away database (SQLite, and PostgreSQL when one answers at
--postgres, default $TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test),
fills one hook with N logs (5 % failed, 5 % pending), then times the pages
through the Flask test client (server time, no network): the first page, a
page deep in the history (keyset), the failed tab, a date filter, a search
by instance id, the hooks list and the dashboard. Prints the median and the
95th percentile of --runs requests per page. Meant for `make bench`.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench password"  # noqa: S105 - a throw-away account
CHUNK = 5000


def build_app(database_url: str, instance: str):
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret-key-0123456789",
            "FORMHOOKS_INSTANCE_PATH": instance,
            "REDIS_URL": "redis://127.0.0.1:1/0",  # unreachable: the dashboard must cope
        }
    )
    with app.app_context():
        upgrade()
    return app


def fill(app, count: int) -> tuple[str, str, str]:
    """A user, a form, a hook and `count` submissions with one log each."""
    from sqlalchemy import insert

    from webapp.extensions import db
    from webapp.models import DeliveryLog, Form, Hook, Submission, User
    from webapp.models.base import new_uid

    with app.app_context():
        user = User(email="bench@example.org", role="admin")
        user.set_password(PASSWORD)
        form = Form(name="Bench form", owner=user)
        hook = Hook(form=form, name="Bench hook", endpoint="https://example.org/hook")
        db.session.add_all([user, form, hook])
        db.session.commit()
        start = datetime(2025, 1, 1, tzinfo=UTC)
        for offset in range(0, count, CHUNK):
            size = min(CHUNK, count - offset)
            rows = [
                {
                    "form_id": form.id,
                    "instance_id": f"uuid:{uuid.UUID(int=offset + i)}",
                    "source_format": "json",
                    "content_type": "application/json",
                    "body": b'{"n": 1}',
                    "data": {"n": 1},
                    "created_at": start + timedelta(seconds=30 * (offset + i)),
                    "updated_at": start + timedelta(seconds=30 * (offset + i)),
                    "edit_count": 0,
                }
                for i in range(size)
            ]
            ids = list(
                db.session.scalars(
                    insert(Submission).returning(Submission.id, sort_by_parameter_order=True),
                    rows,
                )
            )
            logs = []
            for i, submission_id in enumerate(ids):
                n = offset + i
                status = "failed" if n % 20 == 0 else "pending" if n % 20 == 1 else "success"
                when = start + timedelta(seconds=30 * n)
                logs.append(
                    {
                        "uid": new_uid("hl"),
                        "hook_id": hook.id,
                        "submission_id": submission_id,
                        "status": status,
                        "tries": 4 if status == "failed" else 1,
                        "status_code": 500 if status == "failed" else 200,
                        "message": "HTTP 500: error" if status == "failed" else "ok",
                        "date_created": when,
                        "date_modified": when,
                        "next_retry_at": when if status == "pending" else None,
                        "last_attempt_at": when,
                    }
                )
            db.session.execute(insert(DeliveryLog), logs)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                from sqlalchemy import text

                conn.execute(text("ANALYZE"))
        else:
            from sqlalchemy import text

            db.session.execute(text("ANALYZE"))
            db.session.commit()
        return form.uid, hook.uid, f"{uuid.UUID(int=count // 2)}"


def logged_in_client(app):
    client = app.test_client()
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "bench@example.org", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.status_code
    return client


def deep_cursor(app, hook_uid: str, position: int) -> int:
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import DeliveryLog, Hook

    with app.app_context():
        hook_id = db.session.scalar(select(Hook.id).where(Hook.uid == hook_uid))
        return db.session.scalar(
            select(DeliveryLog.id)
            .where(DeliveryLog.hook_id == hook_id)
            .order_by(DeliveryLog.date_created.desc(), DeliveryLog.id.desc())
            .offset(position)
            .limit(1)
        )


def measure(client, url: str, runs: int) -> tuple[float, float]:
    client.get(url)  # warm-up
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def bench(label: str, database_url: str, count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as instance:
        app = build_app(database_url, instance)
        began = time.perf_counter()
        form_uid, hook_uid, middle = fill(app, count)
        print(
            f"\n{label}: {count:,} logs on one hook (filled in {time.perf_counter() - began:.1f} s)"
        )
        client = logged_in_client(app)
        base = f"/forms/{form_uid}/hooks/{hook_uid}/logs"
        pages = [
            ("logs, first page", base),
            (
                "logs, page at 50,000 (keyset)",
                f"{base}?before={deep_cursor(app, hook_uid, count // 2)}",
            ),
            ("logs, failed tab", f"{base}?status=failed"),
            ("logs, one day", f"{base}?from=2025-01-10&to=2025-01-10"),
            ("logs, search instance id", f"{base}?q={middle[-12:]}"),
            ("hooks list (counts)", f"/forms/{form_uid}/hooks"),
            ("form page", f"/forms/{form_uid}"),
            ("dashboard", "/"),
        ]
        print(f"  {'page':<34} {'median':>9} {'p95':>9}")
        for name, url in pages:
            median, p95 = measure(client, url, runs)
            print(f"  {name:<34} {median:8.1f}ms {p95:8.1f}ms")
        from webapp.extensions import db

        with app.app_context():
            db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        bench("SQLite", f"sqlite:///{directory}/bench.sqlite3", args.logs, args.runs)
    try:
        import psycopg

        psycopg.connect(args.postgres, connect_timeout=3).close()
    except Exception as exc:  # no PostgreSQL here: say so, do not fail
        print(f"\nPostgreSQL skipped: {exc}")
        return 0
    name = f"fh_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        bench("PostgreSQL", f"{args.postgres.rsplit('/', 1)[0]}/{name}", args.logs, args.runs)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
