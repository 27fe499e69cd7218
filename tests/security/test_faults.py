"""Faults with the real processes (gunicorn, worker.py, the scheduler), as in tests/e2e.

* PostgreSQL restarted mid-run, on a private cluster started for the test;
* Redis stopped with sends in flight and retries scheduled, back empty;
* the scheduler down for an hour (simulated by moving due times back);
* endpoints that answer a huge body or trickle bytes.

Every accepted submission must be delivered, exactly once as a success;
an endpoint may see a second copy only of an attempt interrupted mid-send.
A PostgreSQL restart interrupts none: drainers wait for the database and
record the sends they made (webapp/delivery/drainer.py), so it sends nothing twice.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import psycopg
import pytest
import requests
from sqlalchemy import select, update

from tests.helpers import (
    ROOT,
    SECRET_KEY,
    Endpoint,
    Factory,
    LoopbackServer,
    RedisServer,
    free_port,
    load_logs,
    nothing_left_to_send,
    wait_until,
)
from tests.stack import Stack
from webapp.delivery.claims import INTERRUPTED
from webapp.delivery.queue import job_id
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook, Submission
from webapp.models.base import utcnow

pytestmark = pytest.mark.e2e

SCHEDULED_JOBS = "rq:scheduler:scheduled_jobs"


@pytest.fixture(params=["postgresql"])
def db_backend(request, database_urls):
    """These faults are about processes, not SQL: PostgreSQL (production's) only."""
    if request.param not in database_urls:
        pytest.skip(f"PostgreSQL half skipped: {database_urls['postgresql_skip']}")
    return request.param, database_urls[request.param]


def kill_all(stack: Stack) -> None:
    """SIGKILL what is left: the checks are done, a graceful stop only costs time."""
    for name in list(stack.processes):
        stack.kill(name)


def post_submission(stack: Stack, form_uid: str, token: str, instance_id: str, timeout=10):
    return requests.post(
        f"{stack.base_url}/api/v1/forms/{form_uid}/submissions",
        json={"name": "fault test", "meta": {"instanceID": instance_id}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


def delivery_counts(endpoint: Endpoint) -> Counter[str]:
    return Counter(r["headers"]["X-Formhooks-Delivery"] for r in list(endpoint.requests))


# --------------------------------------------------------------------------
# (a) PostgreSQL restarted mid-run
# --------------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (never the shared one on 5432), restartable.

    As root, initdb refuses to run: the cluster then belongs to the postgres
    OS user, in a directory of its own outside pytest's root-only tmp_path.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="formhooks-pg-"))
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.restarts = 0

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        # Output to a file, not a pipe: a server started by pg_ctl inherits it.
        with open(self.root / "commands.log", "ab") as output:
            done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{self.log()}")

    def start(self) -> PrivatePostgres:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE formhooks")
        return self

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: sessions are cut, the server comes back."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-m", "fast",
            "-w", "-t", "60", "restart",
        )  # fmt: skip
        self.restarts += 1

    def log(self) -> str:
        text = ""
        for name in ("commands.log", "server.log"):
            with contextlib.suppress(OSError):
                text += (self.root / name).read_text(errors="replace")[-3000:]
        return text

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres():
    bin_dir = _postgres_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
    except (RuntimeError, subprocess.TimeoutExpired, KeyError, LookupError) as exc:
        server.destroy()
        pytest.skip(f"could not start a private PostgreSQL: {exc}")
    yield server
    server.destroy()


class Poster:
    """Posts submissions one after the other on a thread, recording every answer."""

    def __init__(self, stack: Stack, form_uid: str, token: str) -> None:
        self.stack, self.form_uid, self.token = stack, form_uid, token
        self.answers: dict[str, int | str] = {}  # instance id -> status or error
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            instance_id = f"uuid:fault-{number:05d}"
            try:
                answer = post_submission(self.stack, self.form_uid, self.token, instance_id)
                self.answers[instance_id] = answer.status_code
            except requests.RequestException as exc:
                self.answers[instance_id] = type(exc).__name__
            time.sleep(0.01)

    def accepted(self) -> set[str]:
        return {i for i, status in list(self.answers.items()) if status == 201}


def failed_jobs(redis_url: str) -> Counter[str]:
    """The functions of the jobs in RQ's failed registry, counted."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry

    from webapp.delivery.queue import QUEUE_NAME

    connection = Redis.from_url(redis_url)
    registry = FailedJobRegistry(queue=Queue(QUEUE_NAME, connection=connection))
    jobs = Job.fetch_many(registry.get_job_ids(), connection=connection)
    return Counter(job.func_name for job in jobs if job is not None)


def test_postgresql_restarted_mid_run_sends_nothing_twice(private_postgres, tmp_path, figures):
    from flask_migrate import upgrade

    from webapp import create_app

    redis_server = RedisServer(tmp_path).start()
    endpoint = Endpoint()
    endpoint.delay = 0.3  # deliveries are in flight when the database goes away
    env = {
        "DATABASE_URL": private_postgres.url("formhooks"),
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": SECRET_KEY,
        "FORMHOOKS_INSTANCE_PATH": str(tmp_path / "instance"),
        "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8",
        "MAIL_SERVER": "",
        "PORT": str(free_port()),
        "SCHEDULER_INTERVAL": "0.2",
        "SWEEP_INTERVAL": "1",
        "WORKER_CONCURRENCY": "2",
        # Far above the endpoint's 0.3 s even on a loaded machine (a timed-out
        # send is retried: a second copy, but not one the restart caused);
        # the lease, 2 * 2 + 5 = 9 s, bounds how long a drainer waits to record.
        "DELIVERY_TIMEOUT": "2",
        "RETRY_DELAYS": "1,1,1",
        "PYTHONPATH": str(ROOT),
    }
    app = create_app(env)
    with app.app_context():
        upgrade()
    make = Factory(app)
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    stack = Stack({**os.environ, **env}, tmp_path)
    poster = Poster(stack, form_uid, token)
    try:
        stack.start_all("web", "worker", "scheduler")
        poster.thread.start()
        wait_until(lambda: len(endpoint.requests) >= 10, 20, "first deliveries", stack.logs)
        private_postgres.restart()
        figures.add("faults injected: PostgreSQL restarted")
        before = len(poster.accepted())
        wait_until(lambda: len(poster.accepted()) >= before + 10, 30, "posts after it", stack.logs)
        time.sleep(1.0)  # keep posting while workers reconnect
        poster.stopping.set()
        poster.thread.join(15)

        accepted = poster.accepted()

        def settled() -> bool:
            rows = load_logs(app)
            delivered = {r.submission.instance_id for r in rows if r.status == "success"}
            return accepted <= delivered and all(r.status != "pending" for r in rows)

        wait_until(settled, 60, "every accepted submission to be delivered", stack.logs)
        assert nothing_left_to_send(app, redis_server.url) == {}  # no later sweep sends again
        rows = load_logs(app)
        with app.app_context():
            stored = set(db.session.scalars(select(Submission.instance_id)))
        received = delivery_counts(endpoint)
        by_instance = {r.submission.instance_id: r for r in rows}
        lost = accepted - stored
        duplicates = sum(count - 1 for count in received.values())
        # A copy is explained when the log records the attempt that made it
        # (e.g. one that timed out, then retried); an attempt cut by the restart
        # would be recorded as "Interrupted" and its copy sent again.
        interrupted = {
            r.uid: r.attempts for r in rows if any(a.message == INTERRUPTED for a in r.attempts)
        }
        unexplained = {
            r.uid: (received[r.uid], [(a.outcome, a.message) for a in r.attempts])
            for r in rows
            if received[r.uid] > len([a for a in r.attempts if a.message != INTERRUPTED])
        }
        refused = {i: s for i, s in poster.answers.items() if s != 201}
        failed = failed_jobs(redis_server.url)
        figures.add("faults: submissions posted", len(poster.answers))
        figures.add("faults: submissions accepted (201)", len(accepted))
        figures.add(
            "faults: submissions refused during the outage (5xx or no answer)", len(refused)
        )
        figures.add("faults: submissions lost", len(lost))
        figures.add("faults: duplicate deliveries (PostgreSQL restart)", duplicates)
        figures.add("faults: duplicates caused by the restart (outcome lost)", len(unexplained))
        print(
            f"\nPostgreSQL restart: {len(poster.answers)} posted, {len(accepted)} accepted, "
            f"{len(refused)} refused {Counter(refused.values())}, {len(lost)} lost, "
            f"{duplicates} duplicate deliveries ({len(unexplained)} caused by the restart); "
            f"failed jobs {dict(failed)}"
        )

        assert not lost, f"accepted but not stored: {sorted(lost)[:10]}"
        # `pg_ctl restart -m fast` is a clean shutdown: no commit is lost, even
        # asynchronous ones, and drainers record every send once it is back.
        assert not unexplained and not interrupted, (unexplained, interrupted)
        assert duplicates == 0, {
            r.uid: [(a.outcome, a.message) for a in r.attempts] for r in rows if received[r.uid] > 1
        }
        assert not failed["webapp.delivery.jobs.drain"], f"a drain job died:\n{stack.logs()}"
        for instance_id in accepted:
            row = by_instance[instance_id]
            successes = [a for a in row.attempts if a.outcome == "success"]
            assert row.status == "success" and len(successes) == 1, (instance_id, row.attempts)
            assert received[row.uid] >= 1
            # A second copy only of an attempt that did not record its outcome.
            assert received[row.uid] <= len(row.attempts), (instance_id, row.attempts)
            for attempt in row.attempts:
                assert attempt.outcome in ("success", "error", "failure"), attempt.outcome
        assert all(r.status != "pending" for r in rows)
        assert not set(received) - {r.uid for r in rows}
        for name in ("web", "worker", "scheduler"):
            assert stack.processes[name].poll() is None, f"{name} died:\n{stack.logs()}"
    finally:
        poster.stopping.set()
        kill_all(stack)
        endpoint.close()
        redis_server.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --------------------------------------------------------------------------
# (b) The scheduler down for an hour
# --------------------------------------------------------------------------


def test_scheduler_down_for_an_hour_then_back(app, make, stack, stack_redis, endpoint, figures):
    overdue = 8
    endpoint.statuses = [500] * overdue + [200]  # every first attempt fails
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    stack.start_all("web", "worker")  # no scheduler
    for number in range(overdue):
        assert post_submission(stack, form_uid, token, f"uuid:late-{number}").status_code == 201
    endpoint.wait_for(overdue)

    def retries_scheduled() -> bool:
        rows = load_logs(app)
        return len(rows) == overdue and all(r.tries == 1 and r.next_retry_at for r in rows)

    wait_until(retries_scheduled, 20, "the retries to be scheduled", stack.logs)
    rows = load_logs(app)
    redis = stack_redis_client(stack_redis)
    jobs = {job_id(r.id, r.tries): r for r in rows}
    wait_until(
        lambda: all(redis.zscore(SCHEDULED_JOBS, j) is not None for j in jobs),
        10,
        "rq-scheduler to hold the retries",
        stack.logs,
    )
    # An hour passes with no scheduler: every due time moves one hour back.
    with app.app_context():
        for row in rows:
            db.session.execute(
                update(DeliveryLog)
                .where(DeliveryLog.id == row.id)
                .values(next_retry_at=row.next_retry_at - timedelta(hours=1))
            )
        db.session.commit()
    for job in jobs:
        redis.zadd(SCHEDULED_JOBS, {job: redis.zscore(SCHEDULED_JOBS, job) - 3600}, xx=True)
    assert all(r.next_retry_at < utcnow() - timedelta(minutes=58) for r in load_logs(app))
    figures.add("faults injected: scheduler down 1 h (simulated)")
    assert len(endpoint.requests) == overdue  # nothing moves without the scheduler

    started = time.monotonic()
    stack.start("scheduler")
    endpoint.wait_for(2 * overdue, timeout=30)
    took = max(r["time"] for r in endpoint.requests) - started
    wait_until(
        lambda: all(r.status == "success" for r in load_logs(app)), 10, "the successes", stack.logs
    )
    assert nothing_left_to_send(app, stack_redis.url) == {}  # no later poll or sweep sends again
    received = delivery_counts(endpoint)
    rows = load_logs(app)
    duplicates = sum(count - 2 for count in received.values())
    figures.add("faults: overdue retries sent after the scheduler came back", overdue)
    figures.add("faults: duplicate deliveries (scheduler outage)", duplicates)
    print(f"\nScheduler back: {overdue} overdue retries sent within {took:.2f} s")
    # Sent on the scheduler's first passes (its start-up included, ~2 s alone,
    # several times that on a loaded CI machine), not at a later schedule.
    assert took < 20, f"overdue retries took {took:.1f} s after the scheduler started"
    assert received == {r.uid: 2 for r in rows}, received
    assert [(r.status, r.tries) for r in rows] == [("success", 2)] * overdue
    kill_all(stack)


def stack_redis_client(server: RedisServer):
    from redis import Redis

    return Redis.from_url(server.url)


def test_redis_stopped_during_sending_and_while_retries_are_scheduled(
    app, make, stack, stack_redis, endpoint, figures
):
    """Redis dies with sends in flight and retries waiting in rq-scheduler, and comes
    back empty: the sends are recorded, the lost retries are found by the sweeper,
    every log ends in success, and nothing is sent twice."""
    count = 10
    endpoint.delay = 2.5  # hook A: slow, so its sends are in flight when Redis stops
    failing = Endpoint()  # hook B: every first attempt fails, so its retries wait
    failing.statuses = [500] * count + [200]
    try:
        form_uid, token = make.form()
        make.hook(form_uid, name="A", endpoint=endpoint.url)
        make.hook(form_uid, name="B", endpoint=failing.url)
        with app.app_context():
            hook_a = db.session.scalar(select(Hook.id).where(Hook.name == "A"))
        stack.env["RETRY_DELAYS"] = "3,3,3"
        stack.start_all("web", "worker", "scheduler")
        for number in range(count):
            answer = post_submission(stack, form_uid, token, f"uuid:redis-{number}")
            assert answer.status_code == 201
        failing.wait_for(count, timeout=20)
        redis = stack_redis_client(stack_redis)
        wait_until(
            lambda: redis.zcard(SCHEDULED_JOBS) >= count, 10, "the retries to be scheduled", stack
        )
        stack_redis.stop()
        in_flight = sum(1 for r in load_logs(app) if r.hook_id == hook_a and r.status == "pending")
        assert in_flight > 0, "hook A finished before Redis stopped: nothing was in flight"
        figures.add("faults injected: Redis stopped during sending, retries scheduled")
        time.sleep(2.0)  # the outage: the sends in flight end and are recorded meanwhile
        stack_redis.start()  # empty: the feed, the drain jobs and the scheduled retries are gone

        def settled() -> bool:
            rows = load_logs(app)
            return len(rows) == 2 * count and all(r.status == "success" for r in rows)

        took = wait_until(settled, 60, "every log to succeed after Redis came back", stack.logs)
        assert nothing_left_to_send(app, stack_redis.url) == {}  # no later sweep sends again
        sent_a, sent_b = delivery_counts(endpoint), delivery_counts(failing)
        duplicates = sum(n - 1 for n in sent_a.values()) + sum(n - 2 for n in sent_b.values())
        figures.add("faults: duplicate deliveries (Redis stopped)", duplicates)
        print(
            f"\nRedis stopped with {in_flight} sends of A in flight and "
            f"{count} retries of B scheduled; all delivered {took:.1f} s after, "
            f"{duplicates} duplicates"
        )
        rows = load_logs(app)
        assert len(sent_a) == count and set(sent_a.values()) == {1}
        assert len(sent_b) == count and set(sent_b.values()) == {2}
        assert all(r.tries == (1 if r.hook_id == hook_a else 2) for r in rows)
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} died:\n{stack.logs()}"
    finally:
        failing.close()
        kill_all(stack)


# --------------------------------------------------------------------------
# (c) A huge answer, and answers that trickle
# --------------------------------------------------------------------------

HUGE = 50 * 1024 * 1024


class HostileEndpoint:
    """A loopback server whose answers are huge or slow, per path."""

    def __init__(self) -> None:
        self.bytes_written: Counter[str] = Counter()
        self.closing = threading.Event()
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # The client hanging up is what these tests want.
                with contextlib.suppress(TimeoutError, BrokenPipeError, ConnectionResetError):
                    getattr(hostile, self.path.strip("/").replace("-", "_"))(self)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _write(self, handler, path: str, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        self.bytes_written[path] += len(data)

    def huge_ok(self, handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(HUGE))
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(HUGE // len(chunk)):
            self._write(handler, "huge-ok", chunk)

    def huge_error(self, handler) -> None:
        handler.send_response(500)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = "é" * 32768
        data = f"{len(chunk.encode()):x}\r\n".encode() + chunk.encode() + b"\r\n"
        for _ in range(HUGE // len(data)):
            self._write(handler, "huge-error", data)
        self._write(handler, "huge-error", b"0\r\n\r\n")

    def trickle_headers(self, handler) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n":
            if self.closing.wait(0.1):
                return
            self._write(handler, "trickle-headers", bytes([byte]))

    def trickle_body(self, handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        for _ in range(100000):
            if self.closing.wait(0.1):
                return
            self._write(handler, "trickle-body", b"z")

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hostile_endpoint():
    server = HostileEndpoint()
    yield server
    server.close()


def test_huge_and_trickling_answers_are_bounded(app, make, stack, hostile_endpoint, figures):
    from webapp.delivery.claims import MESSAGE_LIMIT
    from webapp.delivery.results import EXCERPT_BYTES

    timeout = 2.0
    stack.env["DELIVERY_TIMEOUT"] = str(timeout)
    paths = ["huge-ok", "huge-error", "trickle-headers", "trickle-body"]
    form_uid, token = make.form()
    for path in paths:
        make.hook(form_uid, name=path, endpoint=f"{hostile_endpoint.base}/{path}")
    stack.start_all("web", "worker")
    posted = time.monotonic()
    assert post_submission(stack, form_uid, token, "uuid:hostile-answers").status_code == 201
    took = wait_until(
        lambda: all(r.tries == 1 for r in load_logs(app)), timeout + 10, "the attempts", stack.logs
    )
    figures.add("faults injected: huge or trickling answers", len(paths))
    rows = {r.hook.name: r for r in load_logs(app)}
    for path, row in rows.items():
        [attempt] = row.attempts
        assert len(row.message) <= MESSAGE_LIMIT and len(attempt.message) <= MESSAGE_LIMIT, path
        assert attempt.duration_ms <= (timeout + 1.0) * 1000, (path, attempt.duration_ms)
    assert rows["huge-ok"].status == "success"
    assert len(rows["huge-ok"].message) <= EXCERPT_BYTES
    assert (rows["huge-error"].status_code, rows["huge-error"].status) == (500, "pending")
    assert rows["huge-error"].message.startswith("HTTP 500: é")
    for path in ("trickle-headers", "trickle-body"):
        assert rows[path].status == "pending" and rows[path].status_code is None, path
        assert rows[path].message.startswith(f"Timed out after {timeout:g} s"), rows[path].message
        assert rows[path].attempts[0].duration_ms >= (timeout - 0.2) * 1000
    # Only a little of the 50 MB was ever read: the sender hung up.
    assert hostile_endpoint.bytes_written["huge-ok"] < HUGE
    assert time.monotonic() - posted < timeout + 8, took
    print(
        "\nHostile answers: attempts took "
        + ", ".join(f"{p} {rows[p].attempts[0].duration_ms} ms" for p in paths)
        + f"; huge-ok server wrote {hostile_endpoint.bytes_written['huge-ok']} bytes"
    )
    kill_all(stack)
