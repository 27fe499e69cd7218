"""The drainer when PostgreSQL cuts its connections: every log sent exactly once.

A real RQ worker drains real endpoints while another connection (the
admin's) terminates the engine's backends: in the middle of a statement
of the claim, of the attempt insert, of the record, or while every send is
held by the endpoint and the database refuses connections for a while.
PostgreSQL only: SQLite has no server to lose.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler

import psycopg
import pytest
from rq.registry import FailedJobRegistry
from sqlalchemy import event, select

from tests.helpers import LOOPBACK_HOOKS, PG_ADMIN_URL, LoopbackServer, run_worker
from webapp.delivery import feed
from webapp.delivery import queue as q
from webapp.delivery.claims import lease_seconds
from webapp.delivery.sweeper import sweep_due_logs
from webapp.extensions import db
from webapp.models import DeliveryLog
from webapp.models.base import utcnow

LOGS = 6


@pytest.fixture
def db_backend(database_urls):
    if "postgresql" not in database_urls:
        pytest.skip(f"PostgreSQL half skipped: {database_urls['postgresql_skip']}")
    return "postgresql", database_urls["postgresql"]


# DELIVERY_TIMEOUT 5: a lease of 15 s, far beyond these outages.
pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


class GatedEndpoint:
    """Answers 200 to every POST, but only once `gate` is set; counts deliveries."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.received: list[str] = []
        self.lock = threading.Condition()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with endpoint.lock:
                    endpoint.received.append(self.headers["X-Formhooks-Delivery"])
                    endpoint.lock.notify_all()
                endpoint.gate.wait(30)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = LoopbackServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 15) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: len(self.received) >= count, timeout)

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated():
    server = GatedEndpoint()
    yield server
    server.close()


def database_name(app) -> str:
    with app.app_context():
        return db.engine.url.database


def terminate(database: str, pid: int | None = None) -> int:
    """Terminate the backends of `database` (or one of them) and wait for them to exit."""
    where = "pid = %s" if pid else "datname = %s AND pid <> pg_backend_pid()"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            f"SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE {where}",
            (pid or database,),
        ).fetchall()
    return len(rows)


def allow_connections(database: str, allowed: bool) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}')


def post_logs(app, make, endpoint_url: str) -> None:
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint_url)
    client = app.test_client()
    for number in range(LOGS):
        response = client.post(
            f"/api/v1/forms/{form_uid}/submissions",
            json={"name": "db fault", "meta": {"instanceID": f"uuid:db-fault-{number}"}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.json


def assert_each_sent_once_and_recorded(app, received: list[str]) -> None:
    with app.app_context():
        assert FailedJobRegistry(queue=q.delivery_queue()).count == 0, "a job died"
        rows = db.session.scalars(select(DeliveryLog).order_by(DeliveryLog.id)).all()
        assert len(rows) == LOGS
        assert sorted(received) == sorted(r.uid for r in rows), "each log sent exactly once"
        for row in rows:
            outcomes = [a.outcome for a in row.attempts]
            assert (row.status, row.tries, row.locked_until) == ("success", 1, None), row.message
            assert outcomes == ["success"], outcomes
        db.session.rollback()
        # After every lease, a sweep finds nothing left to send.
        assert sweep_due_logs(utcnow() + timedelta(seconds=lease_seconds() + 5)) == 0
        assert feed.waiting() == 0


@pytest.mark.parametrize(
    "statement",
    [
        ("UPDATE delivery_logs SET", "RETURNING"),  # the claim
        ("INSERT INTO delivery_attempts", ""),  # the attempts opened before sending
        ("UPDATE delivery_attempts", ""),  # the record, after every send was made
    ],
    ids=["claim", "open-attempts", "record"],
)
def test_backend_terminated_mid_statement_sends_each_log_once(app, make, gated, statement):
    gated.gate.set()
    post_logs(app, make, gated.url)
    database, cut = database_name(app), []
    with app.app_context():
        engine = db.engine

    def cut_once(conn, cursor, sql, parameters, context, executemany):
        if not cut and sql.startswith(statement[0]) and statement[1] in sql:
            cut.append(cursor.connection.info.backend_pid)
            assert terminate(database, pid=cut[0]) == 1

    event.listen(engine, "before_cursor_execute", cut_once)
    try:
        run_worker(app)
    finally:
        event.remove(engine, "before_cursor_execute", cut_once)
    assert cut, f"no statement started with {statement!r}"
    assert_each_sent_once_and_recorded(app, gated.received)


def test_database_away_while_sends_are_held_then_back(app, make, gated, caplog):
    """The sends end while PostgreSQL refuses connections; recorded once it is back."""
    caplog.set_level(logging.INFO, logger="webapp.delivery.drainer")
    post_logs(app, make, gated.url)
    database = database_name(app)
    failures: list[BaseException] = []

    def outage() -> None:
        try:
            assert gated.wait_for(LOGS), "the sends did not start"
            allow_connections(database, False)
            assert terminate(database) >= 1  # the pooled connection of the drainer
            gated.gate.set()  # every send answers 200 now, with no database to record it
            deadline = time.monotonic() + 15
            while not any("Database unreachable" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the drainer never saw the outage"
                time.sleep(0.02)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            allow_connections(database, True)

    helper = threading.Thread(target=outage)
    helper.start()
    try:
        run_worker(app)  # the drain job: must survive the outage, not die with it
    finally:
        gated.gate.set()
        helper.join(30)
    assert not failures, failures
    assert_each_sent_once_and_recorded(app, gated.received)
    assert any("Database back" in r.getMessage() for r in caplog.records)
