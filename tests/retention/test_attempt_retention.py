"""LOG_RETENTION_DAYS: the attempts of deliveries finished long ago go, the logs stay.

On SQLite and PostgreSQL; time driven by moving dates back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.helpers import assert_exact, make_retries_due, run_worker
from tests.retention.retention_support import age_logs, counts, post, run
from webapp.extensions import db
from webapp.models import Attempt, DeliveryLog, Submission

pytestmark = pytest.mark.settings(
    SSRF_ALLOWED_NETWORKS="127.0.0.0/8", RETRY_DELAYS="0,0,0", LOG_RETENTION_DAYS="7"
)


def logs_by_instance(app) -> dict[str, tuple]:
    """{instance id: (status, tries, status_code, message, attempts)} of each log."""
    with app.app_context():
        rows = db.session.execute(
            select(DeliveryLog, Submission.instance_id).join(Submission).order_by(DeliveryLog.id)
        ).all()
        return {
            instance_id: (log.status, log.tries, log.status_code, log.message, len(log.attempts))
            for log, instance_id in rows
        }


def test_attempts_of_old_finished_logs_go_and_the_logs_keep_their_state(
    app, client, make, endpoint
):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    endpoint.statuses = [500, 200]  # ok: one failure, then delivered
    post(client, form_uid, token, "uuid:ok")
    run_worker(app)
    make_retries_due(app)
    run_worker(app)
    endpoint.statuses = [500]
    post(client, form_uid, token, "uuid:failed")
    for _ in range(4):
        run_worker(app)
        make_retries_due(app)
    post(client, form_uid, token, "uuid:retrying")
    run_worker(app)  # one failed try; its retry is due
    endpoint.statuses = [200]
    post(client, form_uid, token, "uuid:recent")
    run_worker(app)
    age_logs(
        app,
        8,
        DeliveryLog.submission_id.in_(
            select(Submission.id).where(
                Submission.instance_id.in_(["uuid:ok", "uuid:failed", "uuid:retrying"])
            )
        ),
    )
    before = logs_by_instance(app)
    assert before["uuid:ok"][:3] == ("success", 2, 200) and before["uuid:ok"][4] == 2
    assert before["uuid:failed"][:3] == ("failed", 4, 500) and before["uuid:failed"][4] == 4
    assert before["uuid:retrying"][0] == "pending" and before["uuid:retrying"][4] == 1
    rows_before = counts(app)

    result = run(app)

    after = logs_by_instance(app)
    for instance_id in ("uuid:ok", "uuid:failed"):
        assert after[instance_id] == (*before[instance_id][:4], 0)  # the log as it was
    assert after["uuid:retrying"] == before["uuid:retrying"]  # pending: kept
    assert after["uuid:recent"] == before["uuid:recent"]  # finished yesterday: kept
    assert result.counts.attempts_deleted == 6 == rows_before["attempts"] - counts(app)["attempts"]
    assert result.counts.submissions_deleted == 0  # SUBMISSION_RETENTION_DAYS is unset
    assert counts(app)["submissions"] == rows_before["submissions"]
    assert_exact(app)
    # Idempotent.
    again = run(app)
    assert again.counts.attempts_deleted == 0 and logs_by_instance(app) == after


def test_a_log_retried_since_keeps_its_attempts(app, client, make, endpoint):
    """A log retried by hand since it finished (now pending, or finished again
    recently) keeps its old attempts."""
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    endpoint.statuses = [200]
    post(client, form_uid, token, "uuid:a")
    post(client, form_uid, token, "uuid:b")
    run_worker(app)
    age_logs(app, 30)
    with app.app_context():
        # "Retry" of b's log: a new series starts now.
        b_log = select(Submission.id).where(Submission.instance_id == "uuid:b")
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.submission_id.in_(b_log))
            .values(status="pending", tries=0)
        )
        db.session.commit()
    result = run(app, batch_size=1)
    assert result.counts.attempts_deleted == 1
    with app.app_context():
        left = db.session.scalars(select(Attempt.log_id)).all()
        assert len(left) == 1
    assert logs_by_instance(app)["uuid:b"][4] == 1


def test_batches_and_cap(app, client, make, endpoint):
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    make.hook(form_uid, endpoint=endpoint.url, name="Second")
    endpoint.statuses = [200]
    for n in range(6):
        post(client, form_uid, token, f"uuid:{n}")
    run_worker(app)
    age_logs(app, 30)
    assert counts(app)["attempts"] == 12
    first = run(app, batch_size=4, max_per_run=5)
    assert (first.counts.attempts_deleted, first.complete) == (8, False)
    rest = run(app, batch_size=4)
    assert (rest.counts.attempts_deleted, rest.complete) == (4, True)
    assert counts(app)["attempts"] == 0 and counts(app)["logs"] == 12
