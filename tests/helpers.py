"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


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
