"""Retention on PostgreSQL: seconds per 1,000 submissions (or attempts) deleted.

    .venv/bin/python scripts/bench_retention.py [--count N]

Fills a throw-away database (scripts/bench.py's Env) with N submissions
400 days old, as a year of a busy form leaves them: two hooks (one sending
edits), 10 % of submissions edited once, 5 % of deliveries failed after 4
tries, 1 % still pending, 2 % with a 16 KB photo; every delivery with its
attempts. Then times, each on a database of its own:

- `flask retention run` with SUBMISSION_RETENTION_DAYS=365 (all but the
  pending ones go, with their versions, logs, attempts and files);
- the baseline: a bare loop of `DELETE FROM submissions` of the same
  submissions, 1,000 per transaction, the foreign keys' ON DELETE CASCADE
  doing the rest (what the database alone costs, without the checks and
  locks that keep pending deliveries and concurrent posts safe);
- LOG_RETENTION_DAYS=30: the attempts of the finished deliveries.

`make bench` runs it as its `retention` section (--quick: 20,000).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILL = [
    # Submissions, one second apart, 400 days ago: about 1 KB of JSON each.
    "INSERT INTO submissions (form_id, instance_id, source_format, content_type, body, data,"
    " created_at, updated_at, edit_count, root_instance_id, position, received)"
    " SELECT :form, 'uuid:' || g, 'json', 'application/json',"
    " convert_to('{\"n\": ' || g || ', \"notes\": \"' || repeat('x', 1000) || '\"}', 'UTF8'),"
    " json_build_object('n', g, 'notes', repeat('x', 1000)),"
    " now() - INTERVAL '400 days' + g * INTERVAL '1 s',"
    " now() - INTERVAL '400 days' + g * INTERVAL '1 s', 0, 'uuid:' || g, 0, true"
    " FROM generate_series(1, :n) AS g",
    # One edit of every tenth, an hour later.
    "INSERT INTO submissions (form_id, instance_id, source_format, content_type, body, data,"
    " created_at, updated_at, edit_count, root_id, root_instance_id, deprecated_id, position,"
    " received)"
    " SELECT form_id, 'uuid:v' || id, source_format, content_type, body, data,"
    " created_at + INTERVAL '1 hour', created_at + INTERVAL '1 hour', 0, id, instance_id,"
    " instance_id, 1, true"
    " FROM submissions WHERE form_id = :form AND root_id IS NULL AND id % 10 = 0",
    # A log per hook (edits: the hook that sends them only); 5 % failed, 1 % pending.
    "INSERT INTO delivery_logs (uid, hook_id, submission_id, status, tries, status_code,"
    " message, date_created, date_modified, next_retry_at, last_attempt_at)"
    " SELECT {uid}, h.id, s.id,"
    " CASE WHEN s.id % 100 = 1 AND s.root_id IS NULL THEN 'pending'"
    "  WHEN s.id % 20 = 0 THEN 'failed' ELSE 'success' END,"
    " CASE WHEN s.id % 100 = 1 AND s.root_id IS NULL THEN 0"
    "  WHEN s.id % 20 = 0 THEN 4 ELSE 1 END,"
    " CASE WHEN s.id % 20 = 0 THEN 500 ELSE 200 END, 'HTTP 200', s.created_at,"
    " s.created_at + INTERVAL '1 minute', NULL, s.created_at + INTERVAL '1 minute'"
    " FROM submissions AS s JOIN hooks AS h ON h.form_id = s.form_id"
    " WHERE s.form_id = :form AND (s.root_id IS NULL OR h.send_edits)",
    "INSERT INTO delivery_attempts (log_id, number, started_at, duration_ms, status_code,"
    " outcome, message)"
    " SELECT l.id, k, l.date_created + k * INTERVAL '1 s', 120, l.status_code,"
    " CASE WHEN l.status = 'failed' THEN 'failure' ELSE 'success' END, ''"
    " FROM delivery_logs AS l JOIN generate_series(1, 4) AS k ON k <= l.tries",
    "INSERT INTO attachments (uid, submission_id, filename, mimetype, size, sha256, chunks,"
    " created_at)"
    " SELECT 'at' || id, id, 'photo.jpg', 'image/jpeg', 16384, repeat('0', 64), 1, created_at"
    " FROM submissions WHERE form_id = :form AND root_id IS NULL AND id % 50 = 3",
    "INSERT INTO attachment_chunks (attachment_id, seq, data)"
    " SELECT id, 0, decode(repeat('ff', 16384), 'hex') FROM attachments",
]


def fill(env, count: int) -> dict[str, int]:
    """The rows described in the module's docstring; returns the tables' row counts."""
    from sqlalchemy import text

    from webapp.extensions import db
    from webapp.ingest.storing import LOG_UID_SQL

    _, _, hook_ids = env.form("https://example.org/a", "https://example.org/b")
    with env.app.app_context():
        form_id = db.session.scalar(
            text("SELECT form_id FROM hooks WHERE id = :h"), {"h": hook_ids[0]}
        )
        db.session.execute(
            text("UPDATE hooks SET send_edits = true WHERE id = :h"), {"h": hook_ids[0]}
        )
        for statement in FILL:
            db.session.execute(
                text(statement.replace("{uid}", LOG_UID_SQL)), {"form": form_id, "n": count}
            )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        return {
            table: db.session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
            for table in ("submissions", "delivery_logs", "delivery_attempts", "attachments")
        }


def timed_retention(count: int, **settings: str):
    """(seconds, RunResult, rows before) of one uncapped run on a fresh filled database."""
    from scripts.bench import Env
    from webapp.retention.runs import run_retention

    env = Env(**settings)
    try:
        rows = fill(env, count)
        with env.app.app_context():
            started = time.perf_counter()
            result = run_retention("command", max_per_run=None)
            return time.perf_counter() - started, result, rows
    finally:
        env.close()


def timed_bare_deletes(count: int) -> tuple[float, int]:
    """(seconds, submissions deleted) of the baseline loop (see the module's docstring)."""
    from sqlalchemy import text

    from scripts.bench import Env
    from webapp.extensions import db
    from webapp.models.base import utcnow

    env = Env()
    try:
        fill(env, count)
        cutoff = utcnow() - timedelta(days=365)
        deleted = 0
        with env.app.app_context():
            started = time.perf_counter()
            while True:
                ids = db.session.scalars(
                    text(
                        "SELECT s.id FROM submissions AS s WHERE s.root_id IS NULL"
                        " AND s.created_at < :cutoff AND NOT EXISTS (SELECT 1 FROM delivery_logs"
                        " AS l WHERE l.submission_id = s.id AND l.status = 'pending')"
                        " ORDER BY s.id LIMIT 1000"
                    ),
                    {"cutoff": cutoff},
                ).all()
                if not ids:
                    break
                db.session.execute(
                    text("DELETE FROM submissions WHERE id = ANY(:ids) OR root_id = ANY(:ids)"),
                    {"ids": list(ids)},
                )
                db.session.commit()
                deleted += len(ids)
            return time.perf_counter() - started, deleted
    finally:
        env.close()


def measure(count: int) -> dict:
    seconds, result, rows = timed_retention(count, SUBMISSION_RETENTION_DAYS="365")
    bare_seconds, bare_deleted = timed_bare_deletes(count)
    log_seconds, log_result, _ = timed_retention(count, LOG_RETENTION_DAYS="30")
    return {
        "rows": rows,
        "submissions": result.counts,
        "per_1000": seconds / result.counts.submissions_deleted * 1000,
        "seconds": seconds,
        "bare_per_1000": bare_seconds / bare_deleted * 1000,
        "attempts": log_result.counts.attempts_deleted,
        "attempts_per_1000": log_seconds / log_result.counts.attempts_deleted * 1000,
        "attempt_seconds": log_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    args = parser.parse_args()
    figures = measure(args.count)
    counts = figures["submissions"]
    print(f"rows: {figures['rows']}")
    print(
        f"retention: {counts.submissions_deleted} submissions deleted in {figures['seconds']:.1f} s"
        f" ({counts.logs_deleted} logs, {counts.files_deleted} files;"
        f" {counts.kept_pending} kept pending): {figures['per_1000']:.2f} s per 1,000"
    )
    print(f"bare DELETE loop: {figures['bare_per_1000']:.2f} s per 1,000")
    print(
        f"attempts: {figures['attempts']} deleted in {figures['attempt_seconds']:.1f} s:"
        f" {figures['attempts_per_1000']:.3f} s per 1,000"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
