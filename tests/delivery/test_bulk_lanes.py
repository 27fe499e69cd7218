"""The bulk lane beside live deliveries: taken second, kept by retries and the sweeper,
looked after by the sweeper's round, and stopped at the claim once cancelled.

Real Redis, real RQ worker, real endpoint, SQLite and PostgreSQL; time is driven.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from rq import Queue
from sqlalchemy import func, select, update

from tests.helpers import (
    LOOPBACK_HOOKS,
    assert_exact,
    make_retries_due,
    nothing_left_to_send,
    run_worker,
)
from webapp.bulk import fill as bulk_fill
from webapp.bulk.batches import _insert_logs, next_batch
from webapp.bulk.cancel import STOPPED, cancel
from webapp.bulk.progress import look_after, progress
from webapp.bulk.ranges import Range
from webapp.bulk.start import start_backfill
from webapp.delivery import feed, sweeper
from webapp.delivery import queue as q
from webapp.delivery.claims import Outcome, prepare, record
from webapp.delivery.drainer import MAX_CLAIMED, Drainer
from webapp.extensions import db
from webapp.models import BulkSend, DeliveryLog, Hook, Submission
from webapp.models.base import utcnow

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS, BULK_BATCH_SIZE="3")


def post(client, form_uid: str, token: str) -> None:
    body = {"q": 1, "meta": {"instanceID": f"uuid:{uuid.uuid4()}"}}
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text


def backfill(app, hook_uid: str) -> int:
    """Start a backfill of everything; returns the bulk send's id (its fill job is queued)."""
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        return start_backfill(hook, Range(None, utcnow()), "tests").id


def bulk_logs(app, bulk_id: int) -> list[DeliveryLog]:
    with app.app_context():
        rows = db.session.scalars(
            select(DeliveryLog).where(DeliveryLog.bulk_id == bulk_id).order_by(DeliveryLog.id)
        ).all()
        db.session.expunge_all()
        return rows


@pytest.fixture
def world(app, client, make, endpoint):
    """6 submissions stored before the hook existed; the hook; its backfill (not run yet)."""
    form_uid, token = make.form()
    for _ in range(6):
        post(client, form_uid, token)
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    return form_uid, token, hook_uid, backfill(app, hook_uid)


def test_a_drainer_takes_live_ids_first_and_bulk_ids_with_the_room_left(app):
    with app.app_context():
        feed.push(range(1, 201), bulk=True)
        feed.push(range(1001, 1011))
        drainer = Drainer()
        ids, bulk = drainer._pop(MAX_CLAIMED)
        assert ids[:10] == list(range(1001, 1011))
        assert len(bulk) == MAX_CLAIMED - 10 and set(ids[10:]) == bulk
        # A live backlog that fills the room leaves the bulk lane alone.
        feed.push(range(2001, 2001 + MAX_CLAIMED))
        ids, bulk = drainer._pop(MAX_CLAIMED)
        assert bulk == set() and ids == list(range(2001, 2001 + MAX_CLAIMED))


def test_a_drainer_running_the_bulk_lane_low_kicks_the_fill_job(app):
    with app.app_context():
        connection = q.redis_connection()
        feed.push([1, 2], bulk=True)  # fewer than a batch (3) waiting
        Drainer()._pop(MAX_CLAIMED)
        assert connection.exists(bulk_fill.FILL_KICK_KEY)
        queued = Queue(q.QUEUE_NAME, connection=connection).get_jobs()
        assert bulk_fill.FILL_FUNC in [job.func_name for job in queued]  # beside the drain job


def test_a_bulk_log_keeps_its_lane_through_retries_and_the_sweeper(app, world, endpoint):
    _, _, hook_uid, bulk_id = world
    endpoint.statuses = [500, 200]
    run_worker(app)  # six sent, the first fails
    failed = [row for row in bulk_logs(app, bulk_id) if row.status == "pending"]
    assert len(failed) == 1 and failed[0].tries == 1
    [retry] = [
        job
        for job in q.scheduler(app.extensions["formhooks.redis"]).get_jobs()
        if job.id == q.job_id(failed[0].id, 1)
    ]
    assert tuple(retry.args) == (failed[0].id, True)
    make_retries_due(app)
    with app.app_context():
        run_worker(app)
        assert [r.status for r in bulk_logs(app, bulk_id)] == ["success"] * 6

        # Redis restarted empty, with one bulk log and one live log due: each back to its lane.
        now = utcnow()
        [first, second] = [r.id for r in bulk_logs(app, bulk_id)][:2]
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id.in_([first, second]))
            .values(status="pending", next_retry_at=now)
        )
        db.session.execute(update(DeliveryLog).where(DeliveryLog.id == second).values(bulk_id=None))
        db.session.commit()
        q.redis_connection().flushdb()
        assert sweeper.sweep_due_logs(now + timedelta(seconds=30)) == 2
        assert feed.in_feed([first, second], bulk=True) == [True, False]
        assert feed.in_feed([first, second]) == [False, True]


def test_the_sweeper_sweeps_each_lane_so_a_bulk_backlog_hides_no_lost_live_log(
    app, world, make, client, monkeypatch
):
    form_uid, token, hook_uid, bulk_id = world
    with app.app_context():
        bulk_fill.fill()  # 6 bulk logs due, waiting in their lane
        post(client, form_uid, token)  # one live log...
        live = db.session.scalar(select(DeliveryLog.id).where(DeliveryLog.bulk_id.is_(None)))
        q.redis_connection().zrem(feed.FEED_KEY, str(live))  # ...whose push was lost
        monkeypatch.setattr(sweeper, "BATCH", 3)  # fewer than the bulk logs waiting
        assert sweeper.sweep_due_logs(utcnow() + timedelta(seconds=30)) == 1
        assert feed.in_feed([live]) == [True]


def test_the_sweepers_round_resumes_a_backfill_whose_fill_job_was_lost(app, world, endpoint):
    _, _, _, bulk_id = world
    with app.app_context():
        connection = q.redis_connection()
        connection.flushdb()  # the queued fill job and its kick are gone
        run_worker(app)
        assert bulk_logs(app, bulk_id) == []  # nothing made without a fill job
        look_after()
        assert connection.exists(bulk_fill.FILL_KICK_KEY)
    run_worker(app)
    assert len(endpoint.requests) == 6
    with app.app_context():
        look_after()  # finishes it: its counts are frozen
        bulk = db.session.get(BulkSend, bulk_id)
        assert (bulk.state, bulk.succeeded, bulk.failed) == ("done", 6, 0)
        assert bulk.finished_at is not None
        assert progress(bulk)["sent"] == 6
    assert nothing_left_to_send(app) == {}


def test_a_log_in_flight_when_cancelled_is_not_sent_again(app, world, endpoint):
    """Being sent while the cancel ran, it failed: its retry is stopped at the claim."""
    _, _, _, bulk_id = world
    with app.app_context():
        bulk_fill.fill()
        ids = [row.id for row in bulk_logs(app, bulk_id)]
        taken, _ = feed.pop_due_bulk(2)  # as a drainer takes them
        now = utcnow()
        batch = prepare(taken, now=now)  # in flight: leased, attempts open
        assert cancel(db.session.get(BulkSend, bulk_id), now=now)
        assert [row.id for row in bulk_logs(app, bulk_id)] == taken  # the rest: deleted
        record([(item, Outcome(False, False, 500, "HTTP 500")) for item in batch.ready])
        assert db.session.get(BulkSend, bulk_id).finished_at is None  # two still pending
    assert taken == ids[:2]
    make_retries_due(app)  # their retries come due, go to the bulk lane, are claimed...
    run_worker(app)
    assert endpoint.requests == []  # ...and stopped, not sent
    rows = bulk_logs(app, bulk_id)
    assert [(r.status, r.tries, r.message) for r in rows] == [("failed", 1, STOPPED)] * 2
    assert all(r.reported_at is not None for r in rows)  # a cancel is not a failure to email
    with app.app_context():
        look_after()  # nothing pending: finished, counts frozen
        bulk = db.session.get(BulkSend, bulk_id)
        assert (bulk.state, bulk.failed, bulk.succeeded) == ("cancelled", 2, 0)
        assert bulk.finished_at is not None
    assert nothing_left_to_send(app) == {}
    assert_exact(app)


def test_insert_on_conflict_skips_a_log_made_meanwhile(app, world):
    """The last guard against duplicates: a log made between a batch's read and its
    insert (by a live delivery or another backfill) wins, quietly."""
    _, _, hook_uid, bulk_id = world
    with app.app_context():
        hook_id = db.session.scalar(select(Hook.id).where(Hook.uid == hook_uid))
        submission_ids = list(db.session.scalars(select(Submission.id).order_by(Submission.id)))
        first = _insert_logs(bulk_id, hook_id, submission_ids[:2], utcnow())
        assert len(first) == 2
        again = _insert_logs(bulk_id, hook_id, submission_ids[:3], utcnow())
        assert len(again) == 1
        db.session.commit()
        count = db.session.scalar(select(func.count()).select_from(DeliveryLog))
        assert count == 3
    assert_exact(app)


def test_a_batch_is_bounded_and_moves_the_cursor(app, world):
    _, _, _, bulk_id = world
    with app.app_context():
        sizes = []
        while (made := next_batch(bulk_id, 4)) is not None:
            sizes.append((len(made.log_ids), made.filled))
        assert sizes == [(4, False), (2, True)]
        bulk = db.session.get(BulkSend, bulk_id)
        assert bulk.created == 6 and bulk.filled_at is not None
        assert bulk.cursor == db.session.scalar(select(func.max(Submission.id)))


def test_a_log_whose_worker_died_mid_send_is_failed_not_deleted_by_a_cancel(app, world, endpoint):
    """It may have reached the endpoint: its history stays, its attempt is closed."""
    _, _, _, bulk_id = world
    with app.app_context():
        bulk_fill.fill()
        [first, *rest] = [row.id for row in bulk_logs(app, bulk_id)]
        taken = feed.pop_due_bulk(1)[0]
        now = utcnow()
        prepare(taken, now=now)  # claimed, attempt open... and the worker dies:
        db.session.execute(  # its lease is over
            update(DeliveryLog)
            .where(DeliveryLog.id == first)
            .values(locked_until=now - timedelta(seconds=1))
        )
        db.session.commit()
        assert taken == [first]
        assert cancel(db.session.get(BulkSend, bulk_id))
        assert [row.id for row in bulk_logs(app, bulk_id)] == [first]  # the rest: deleted
        assert db.session.get(BulkSend, bulk_id).finished_at is None
        q.redis_connection().flushdb()
        assert sweeper.sweep_due_logs(utcnow() + timedelta(seconds=30)) == 1  # to its lane...
    run_worker(app)  # ...claimed: its attempt closed as interrupted, then stopped
    [row] = bulk_logs(app, bulk_id)
    with app.app_context():
        attempts = db.session.get(DeliveryLog, row.id).attempts
        assert [(a.outcome, "Interrupted" in a.message) for a in attempts] == [("error", True)]
    assert (row.status, row.tries, row.message) == ("failed", 1, STOPPED)
    assert endpoint.requests == []
    with app.app_context():
        look_after()
        assert db.session.get(BulkSend, bulk_id).finished_at is not None
    assert nothing_left_to_send(app) == {}
    assert_exact(app)
