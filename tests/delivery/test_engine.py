"""The delivery engine with a real Redis, a real RQ worker and real endpoints.

Time is driven, never slept: a test "waits" for a retry by moving its due
time (in the database and in rq-scheduler) into the past, as rq's own tests do.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import LOOPBACK_HOOKS, fixture_bytes, post_fixture, run_worker
from tests.helpers import make_retries_due as fast_forward
from webapp.delivery import feed
from webapp.delivery import queue as q
from webapp.delivery.retries import retry_failed, retry_log
from webapp.delivery.sweeper import sweep_due_logs
from webapp.extensions import db
from webapp.models import Attempt, DeliveryLog
from webapp.models.base import utcnow

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


def logs(app) -> list[DeliveryLog]:
    with app.app_context():
        rows = db.session.scalars(select(DeliveryLog).order_by(DeliveryLog.id)).all()
        for row in rows:
            _ = row.attempts
        db.session.expunge_all()
        return rows


def scheduled_retries(app) -> dict[str, float]:
    with app.app_context():
        return {
            job.id: when
            for job, when in q.scheduler().get_jobs(with_times=True)
            if job.id.startswith("fh-deliver-")
        }


def test_json_hook_receives_exact_body_and_headers(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(
        form_uid,
        endpoint=endpoint.url,
        subset_fields=["household", "consent"],
        payload_template='{"source": "formhooks", "data": %SUBMISSION%}',
        auth_level="basic_auth",
        username="crm",
        password="s3cret",
        custom_headers={"X-Api-Key": "k-123"},
    )
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    assert json.loads(received["body"]) == {
        "source": "formhooks",
        "data": {
            "household": {
                "head_name": "Kofi Mensah",
                "members": 4,
                "water": {"source": "piped", "distance_m": 20},
            },
            "consent": True,
        },
    }
    headers = received["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Api-Key"] == "k-123"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"crm:s3cret").decode()
    assert headers["User-Agent"].startswith("Formhooks/")
    [entry] = logs(app)
    assert headers["X-Formhooks-Delivery"] == entry.uid
    assert (entry.status, entry.tries, entry.status_code) == ("success", 1, 200)
    assert entry.hook_id and hook_uid
    [attempt] = entry.attempts
    assert (attempt.outcome, attempt.status_code, attempt.number) == ("success", 200, 1)
    assert attempt.duration_ms is not None and attempt.message == "answer 1: 200"


def test_xml_hook_receives_the_instance_as_received(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, export_type="xml")
    post_fixture(client, form_uid, token, "odk_instance.xml", "application/xml")
    run_worker(app)
    [received] = endpoint.requests
    assert received["body"] == fixture_bytes("odk_instance.xml")
    assert received["headers"]["Content-Type"] == "application/xml"


def test_default_retry_schedule_without_sleeping(app, client, make, endpoint):
    endpoint.statuses = [500]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    expected_tries = [1, 2, 3, 4]
    for number, delay in zip(expected_tries, [60, 600, 6000, None], strict=True):
        run_worker(app)
        [entry] = logs(app)
        assert entry.tries == number
        if delay is None:
            assert entry.status == "failed" and entry.next_retry_at is None
            assert scheduled_retries(app) == {}
            break
        assert entry.status == "pending"
        gap = (entry.next_retry_at - entry.last_attempt_at).total_seconds()
        assert gap == pytest.approx(delay, abs=0.01)
        [(job_id, when)] = scheduled_retries(app).items()
        assert job_id == q.job_id(entry.id, number)
        assert (
            abs(
                when.replace(tzinfo=entry.next_retry_at.tzinfo).timestamp()
                - entry.next_retry_at.timestamp()
            )
            <= 1
        )
        fast_forward(app)
    assert len(endpoint.requests) == 4
    [entry] = logs(app)
    assert entry.status_code == 500 and "HTTP 500" in entry.message
    assert [a.outcome for a in entry.attempts] == ["failure"] * 4
    # Nothing more happens: no fifth try.
    fast_forward(app)
    run_worker(app)
    assert len(endpoint.requests) == 4


def test_success_after_failures_and_duplicate_jobs_do_nothing(app, client, make, endpoint):
    endpoint.statuses = [503, 200]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    run_worker(app)
    fast_forward(app)
    run_worker(app)
    [entry] = logs(app)
    assert (entry.status, entry.tries) == ("success", 2)
    # A stray job for a finished log sends nothing.
    with app.app_context():
        feed.push([entry.id])
        q.delivery_queue().enqueue_call(
            q.DELIVER_FUNC, args=(entry.id,), job_id=q.job_id(entry.id, 2)
        )
    run_worker(app)
    assert len(endpoint.requests) == 2


def test_a_retry_is_not_sent_before_it_is_due(app, client, make, endpoint):
    endpoint.statuses = [500]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    run_worker(app)
    [entry] = logs(app)
    with app.app_context():
        feed.push([entry.id])  # e.g. a duplicate queued by mistake
    run_worker(app)
    assert len(endpoint.requests) == 1


def test_unreachable_endpoint_fails_attempt_with_message(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint="http://127.0.0.1:9/closed")
    post_fixture(client, form_uid, token)
    run_worker(app)
    [entry] = logs(app)
    assert entry.status == "pending" and entry.tries == 1 and entry.status_code is None
    assert "refused" in entry.message.lower()
    assert entry.attempts[0].outcome == "error"


def test_ssrf_refusal_fails_at_once(app, make, make_app, endpoint):
    app = make_app(SSRF_ALLOWED_NETWORKS="")
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(app.test_client(), form_uid, token)
    run_worker(app)
    [entry] = logs(app)
    assert entry.status == "failed" and entry.tries == 1
    assert "127.0.0.1" in entry.message and "loopback" in entry.message
    assert endpoint.requests == []


def test_manual_retry_starts_a_fresh_series(app, client, make, endpoint):
    endpoint.statuses = [500] * 8 + [200, 500]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    post_fixture(client, form_uid, token, "kobo_flat.json")
    for _ in range(4):
        run_worker(app)
        fast_forward(app)
    assert [e.status for e in logs(app)] == ["failed", "failed"]
    with app.app_context():
        first = db.session.get(DeliveryLog, logs(app)[0].id)
        assert retry_log(first) is True
        assert retry_log(first) is False  # already pending: nothing changes
    run_worker(app)
    entries = logs(app)
    assert (entries[0].status, entries[0].tries) == ("success", 1)
    assert len(entries[0].attempts) == 5  # the history is kept: 4 + 1
    with app.app_context():
        from webapp.models import Hook

        assert retry_failed(db.session.get(Hook, entries[1].hook_id)) == 1
    run_worker(app)
    assert logs(app)[1].tries == 1 and logs(app)[1].status == "pending"


def test_disabled_hook_parks_logs_until_enabled(app, client, make, endpoint):
    from webapp.delivery.retries import resume_paused
    from webapp.models import Hook

    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    with app.app_context():
        db.session.execute(update(Hook).values(active=False))
        db.session.commit()
    run_worker(app)
    [entry] = logs(app)
    assert entry.status == "pending" and entry.next_retry_at is None and "Paused" in entry.message
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        hook.active = True
        db.session.commit()
        assert resume_paused(hook) == 1
    run_worker(app)
    assert logs(app)[0].status == "success" and len(endpoint.requests) == 1


def test_sweeper_requeues_lost_jobs_once(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    with app.app_context():
        q.redis_connection().flushdb()  # Redis restarted empty: the job is gone
        later = utcnow() + timedelta(seconds=30)
        assert sweep_due_logs(utcnow()) == 0  # not overdue beyond the grace yet
        assert sweep_due_logs(later) == 1
        assert sweep_due_logs(later) == 0  # queued now: not twice
    run_worker(app)
    assert len(endpoint.requests) == 1 and logs(app)[0].status == "success"


def test_killed_worker_lease_expires_and_log_is_sent_again(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    [entry] = logs(app)
    with app.app_context():
        # What a worker killed mid-send leaves: a lease and an open attempt.
        now = utcnow()
        db.session.execute(update(DeliveryLog).values(locked_until=now + timedelta(seconds=60)))
        db.session.add(Attempt(log_id=entry.id, number=1, started_at=now))
        db.session.commit()
        q.redis_connection().flushdb()
        assert sweep_due_logs(now + timedelta(seconds=30)) == 0  # still leased
        db.session.execute(update(DeliveryLog).values(locked_until=now - timedelta(seconds=1)))
        db.session.commit()
        assert sweep_due_logs(now + timedelta(seconds=30)) == 1
    run_worker(app)
    [entry] = logs(app)
    assert entry.status == "success" and entry.tries == 2
    assert [a.outcome for a in entry.attempts] == ["error", "success"]
    assert "Interrupted" in entry.attempts[0].message


def test_a_worker_claims_ahead_but_sends_at_most_send_threads_at_once(app, client, make, endpoint):
    """Claims come in batches of about SEND_THREADS (one statement each), while at
    most SEND_THREADS sends are open at once; every log is sent once."""
    import threading
    import time

    from webapp.delivery.drainer import MAX_CLAIMED, SEND_THREADS

    count = MAX_CLAIMED + 16
    endpoint.delay = 0.3
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    for number in range(count):
        body = json.dumps({"n": number, "meta": {"instanceID": f"uuid:ahead-{number}"}}).encode()
        response = client.post(
            f"/api/v1/forms/{form_uid}/submissions",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        assert response.status_code == 201
    leased: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with app.app_context():
            while not done.is_set():
                leased.append(
                    db.session.query(DeliveryLog)
                    .filter(DeliveryLog.status == "pending", DeliveryLog.locked_until > utcnow())
                    .count()
                )
                db.session.rollback()
                time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_worker(app)
    finally:
        done.set()
        watcher.join()
    arrivals = sorted(r["time"] for r in endpoint.requests)
    window = endpoint.delay  # each request is held open this long after it arrives
    most_open = max(sum(1 for t in arrivals if start <= t < start + window) for start in arrivals)
    unsent = [(row.status, row.tries, row.message) for row in logs(app) if row.status != "success"]
    assert len(arrivals) == count, unsent
    assert not unsent
    assert SEND_THREADS < max(leased) <= MAX_CLAIMED
    assert most_open <= SEND_THREADS


def test_a_stop_request_makes_a_drain_take_nothing_more(app, client, make, endpoint, monkeypatch):
    """worker.py calls Drainer.request_stop() on SIGTERM: the drain takes no new log."""
    import threading

    from webapp.delivery.drainer import Drainer

    monkeypatch.setattr(Drainer, "_stop", threading.Event())  # this process's, for this test
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    Drainer.request_stop()
    assert Drainer.stop_requested()
    with app.app_context():
        assert Drainer().run() == 0
        assert feed.pop_due(10) != []  # still waiting in the feed, for the next worker
    [entry] = logs(app)
    assert (entry.status, entry.tries, entry.attempts) == ("pending", 0, [])
    assert endpoint.requests == []
