"""`GET /metrics`: token rules, and every value checked against the database and Redis.

Output is parsed with prometheus_client's own parser, on SQLite and PostgreSQL,
with a real RQ worker and real rq-scheduler registrations in a real Redis.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rq import Worker
from sqlalchemy import select, update

from tests.helpers import run_worker
from webapp.delivery import queue as q
from webapp.extensions import db
from webapp.metrics import quantiles
from webapp.models import Attempt, DeliveryLog
from webapp.models.base import utcnow

TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def app_env(app_env):
    app_env.update(METRICS_TOKEN=TOKEN, SSRF_ALLOWED_NETWORKS="127.0.0.0/8", DELIVERY_TIMEOUT="5")
    return app_env


def scrape(client) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one authorised scrape."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def post(client, form_uid, token):
    """A new submission (its own instance id) each time."""
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json={"_uuid": str(uuid.uuid4()), "household/size": 4},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.json


def test_unset_token_means_no_endpoint(make_app):
    client = make_app(METRICS_TOKEN="").test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize(
    "header",
    [
        None,
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        f"Basic {TOKEN}",
        TOKEN,
        "Bearer ",
    ],
)
def test_a_wrong_token_is_refused_and_reveals_nothing(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"formhooks_" not in response.data


def test_a_short_token_stops_start_up(make_app):
    from webapp.config import ConfigError

    with pytest.raises(ConfigError, match="METRICS_TOKEN must be at least 16"):
        make_app(METRICS_TOKEN="short")


def test_an_empty_system(client):
    samples = scrape(client)
    assert samples[("formhooks_up", (("component", "database"),))] == 1
    assert samples[("formhooks_up", (("component", "redis"),))] == 1
    assert samples[("formhooks_submissions", ())] == 0
    for status in ("pending", "success", "failed"):
        assert samples[("formhooks_deliveries", (("status", status),))] == 0
    assert samples[("formhooks_oldest_pending_delivery_age_seconds", ())] == 0
    assert samples[("formhooks_delivery_lag_seconds", ())] == 0
    assert samples[("formhooks_queue_depth", ())] == 0
    assert samples[("formhooks_workers", ())] == 0
    assert samples[("formhooks_schedulers", ())] == 0
    assert not any(name == "formhooks_attempt_duration_seconds" for name, _ in samples)
    assert ("formhooks_worker_heartbeat_age_seconds", ()) not in samples


def test_submissions_deliveries_queue_and_ages(app, client, make, endpoint):
    endpoint.statuses = [200, 200, 500]
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    for _ in range(3):
        post(client, form_uid, token)
    samples = scrape(client)
    assert samples[("formhooks_submissions", ())] == 3
    assert samples[("formhooks_deliveries", (("status", "pending"),))] == 3
    assert samples[("formhooks_queue_depth", ())] >= 3  # 3 in the feed, and a drain job
    # Time is driven: the oldest pending log arrived an hour ago, and is 10 min overdue.
    now = utcnow()
    with app.app_context():
        first = db.session.scalar(select(DeliveryLog.id).order_by(DeliveryLog.id))
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id == first)
            .values(
                date_created=now - timedelta(hours=1), next_retry_at=now - timedelta(minutes=10)
            )
        )
        db.session.commit()
    samples = scrape(client)
    assert samples[("formhooks_oldest_pending_delivery_age_seconds", ())] == pytest.approx(
        3600, abs=30
    )
    assert samples[("formhooks_delivery_lag_seconds", ())] == pytest.approx(600, abs=30)

    run_worker(app)
    samples = scrape(client)
    assert samples[("formhooks_deliveries", (("status", "success"),))] == 2
    assert samples[("formhooks_deliveries", (("status", "pending"),))] == 1  # a retry waits
    assert samples[("formhooks_scheduled_jobs", ())] >= 1
    assert samples[("formhooks_recent_attempts", (("outcome", "success"),))] == 2
    assert samples[("formhooks_recent_attempts", (("outcome", "failure"),))] == 1
    assert samples[("formhooks_queue_depth", ())] == 0
    # The retry is not due yet: nothing is late, the oldest pending is the new one.
    assert samples[("formhooks_delivery_lag_seconds", ())] == 0
    with app.app_context():
        durations = sorted(
            ms / 1000 for ms in db.session.scalars(select(Attempt.duration_ms)).all()
        )
    expected = dict(zip(("0.5", "0.9", "0.99"), quantiles(durations), strict=True))
    for quantile, value in expected.items():
        sample = samples[("formhooks_attempt_duration_seconds", (("quantile", quantile),))]
        assert sample == pytest.approx(value)


def test_attempt_durations_cover_only_the_recent_window(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    for _ in range(4):
        post(client, form_uid, token)
    run_worker(app)
    with app.app_context():
        ids = db.session.scalars(select(Attempt.id).order_by(Attempt.id)).all()
        for attempt_id, ms in zip(ids, (100, 200, 300, 90_000), strict=True):
            db.session.execute(
                update(Attempt).where(Attempt.id == attempt_id).values(duration_ms=ms)
            )
        # The slow one is an hour old: out of the window.
        db.session.execute(
            update(Attempt)
            .where(Attempt.id == ids[-1])
            .values(started_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    samples = scrape(client)
    assert samples[("formhooks_recent_attempts", (("outcome", "success"),))] == 3
    assert samples[("formhooks_attempt_duration_seconds", (("quantile", "0.5"),))] == 0.2
    assert samples[("formhooks_attempt_duration_seconds", (("quantile", "0.99"),))] == (
        pytest.approx(0.298)
    )


def test_worker_and_scheduler_heartbeats(app, client):
    with app.app_context():
        connection = q.redis_connection()
        worker = Worker([q.delivery_queue(connection)], connection=connection, name="w-test")
        worker.register_birth()
        worker.heartbeat()
        scheduler = q.scheduler(connection, interval=app.config["SCHEDULER_INTERVAL"])
        scheduler.register_birth()
    samples = scrape(client)
    assert samples[("formhooks_workers", ())] == 1
    assert samples[("formhooks_worker_heartbeat_age_seconds", ())] < 5
    assert samples[("formhooks_schedulers", ())] == 1
    assert samples[("formhooks_scheduler_heartbeat_age_seconds", ())] < 5
    # A worker that stopped beating a minute ago shows its age; a dead scheduler vanishes.
    with app.app_context():
        stale = (utcnow() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        connection.hset(worker.key, "last_heartbeat", stale)
        scheduler.register_death()
    samples = scrape(client)
    assert samples[("formhooks_worker_heartbeat_age_seconds", ())] == pytest.approx(60, abs=5)
    assert samples[("formhooks_schedulers", ())] == 0
    assert ("formhooks_scheduler_heartbeat_age_seconds", ()) not in samples
    with app.app_context():
        worker.register_death()


def test_redis_down_still_answers_with_the_database_half(make_app, make):
    from tests.helpers import free_port

    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    samples = scrape(client)
    assert samples[("formhooks_up", (("component", "redis"),))] == 0
    assert samples[("formhooks_up", (("component", "database"),))] == 1
    assert ("formhooks_submissions", ()) in samples
    assert ("formhooks_queue_depth", ()) not in samples


def test_quantiles():
    assert quantiles([]) == []
    assert quantiles([0.3]) == [0.3, 0.3, 0.3]
    assert quantiles([0.1, 0.2, 0.3]) == pytest.approx([0.2, 0.28, 0.298])
