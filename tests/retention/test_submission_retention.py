"""SUBMISSION_RETENTION_DAYS: which submissions go, with what, and what stays.

Time is driven: rows are made old by moving their dates back, never by
waiting. On SQLite and PostgreSQL (the `app` fixture runs each test twice).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.helpers import assert_exact, make_retries_due, run_worker
from tests.retention.retention_support import (
    age,
    counts,
    form_id,
    instance_ids,
    post,
    post_with_photos,
    recorded_runs,
    run,
)
from webapp.extensions import db
from webapp.models import (
    Attachment,
    AttachmentChunk,
    Attempt,
    DeliveryLog,
    Submission,
    form_submission_counts,
)
from webapp.models.base import utcnow

pytestmark = pytest.mark.settings(
    SSRF_ALLOWED_NETWORKS="127.0.0.0/8", RETRY_DELAYS="0,0,0", SUBMISSION_RETENTION_DAYS="30"
)


def build_history(app, client, make, endpoint):
    """Submissions in every state retention cares about; returns the form's uid.

    40 days old: a (delivered), b (failed for good), e (delivered, with
    photos), g1 and its edit g2 (both old), c (pending), d (pending, held by
    a worker now), f1 (edited yesterday by f2), i (re-posted with another
    body yesterday). Young: h (with photos).
    """
    form_uid, token = make.form()
    make.hook(form_uid, endpoint=endpoint.url, name="edits too", send_edits=True)
    make.hook(form_uid, endpoint=endpoint.url, name="creations")
    endpoint.statuses = [200]
    for instance_id in ("uuid:a", "uuid:f1", "uuid:g1", "uuid:i"):
        post(client, form_uid, token, instance_id)
    post(client, form_uid, token, "uuid:g2", q=2, deprecatedID="uuid:g1")
    post_with_photos(client, form_uid, token, "uuid:e")
    run_worker(app)
    endpoint.statuses = [500]
    post(client, form_uid, token, "uuid:b")
    for _ in range(4):
        run_worker(app)
        make_retries_due(app)
    age(app, ["uuid:a", "uuid:b", "uuid:e", "uuid:f1", "uuid:g1", "uuid:g2", "uuid:i"], 40)
    # Yesterday: an edit of f1, a re-post of i with another body; then h.
    post(client, form_uid, token, "uuid:f2", q=2, deprecatedID="uuid:f1")
    post(client, form_uid, token, "uuid:i", q=99)
    endpoint.statuses = [200]
    run_worker(app)
    age(app, ["uuid:f2"], 1)
    with app.app_context():
        yesterday = utcnow() - timedelta(days=1)
        reposted = Submission.instance_id == "uuid:i"
        db.session.execute(update(Submission).where(reposted).values(updated_at=yesterday))
        db.session.commit()
    post(client, form_uid, token, "uuid:c")
    post(client, form_uid, token, "uuid:d")
    age(app, ["uuid:c", "uuid:d"], 40)
    post(client, form_uid, token, "uuid:c")  # the same body again: changes nothing
    post_with_photos(client, form_uid, token, "uuid:h")
    with app.app_context():
        d_log = select(DeliveryLog.id).join(Submission).where(Submission.instance_id == "uuid:d")
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id.in_(d_log))
            .values(locked_until=utcnow() + timedelta(minutes=1))  # a worker holds it
        )
        db.session.commit()
        statuses = {
            (instance_id, status)
            for instance_id, status in db.session.execute(
                select(Submission.instance_id, DeliveryLog.status).join(DeliveryLog)
            )
        }
    assert {("uuid:a", "success"), ("uuid:b", "failed"), ("uuid:c", "pending")} <= statuses
    assert ("uuid:d", "pending") in statuses and ("uuid:d", "success") not in statuses
    return form_uid


def files_of(app, instance_id: str) -> tuple[int, int]:
    """(attachments, chunks) of one version."""
    with app.app_context():
        version = select(Submission.id).where(Submission.instance_id == instance_id)
        files = select(Attachment.id).where(Attachment.submission_id.in_(version))
        return (
            db.session.scalar(select(func.count()).select_from(files.subquery())),
            db.session.scalar(
                select(func.count())
                .select_from(AttachmentChunk)
                .where(AttachmentChunk.attachment_id.in_(files))
            ),
        )


def test_old_submissions_go_with_their_logs_attempts_and_files(app, client, make, endpoint):
    form_uid = build_history(app, client, make, endpoint)
    assert files_of(app, "uuid:e") == (2, 4) and files_of(app, "uuid:h") == (2, 4)
    before = counts(app)
    with app.app_context():
        doomed_logs = (
            select(DeliveryLog.id)
            .join(Submission)
            .where(Submission.instance_id.in_(["uuid:a", "uuid:b", "uuid:e", "uuid:g1", "uuid:g2"]))
        )
        doomed_attempts = db.session.scalar(
            select(func.count()).select_from(Attempt).where(Attempt.log_id.in_(doomed_logs))
        )
    assert doomed_attempts >= 2 + 8 + 2 + 2 + 1  # b failed 4 times on each hook

    result = run(app)

    assert instance_ids(app) == {"uuid:c", "uuid:d", "uuid:f1", "uuid:f2", "uuid:i", "uuid:h"}
    assert files_of(app, "uuid:e") == (0, 0) and files_of(app, "uuid:h") == (2, 4)
    after = counts(app)
    assert before["submissions"] - after["submissions"] == 5  # a, b, e, g1 and g2
    assert before["logs"] - after["logs"] == 2 + 2 + 2 + 2 + 1 == result.counts.logs_deleted
    assert before["attempts"] - after["attempts"] == doomed_attempts
    assert (before["files"] - after["files"], before["chunks"] - after["chunks"]) == (2, 4)
    c = result.counts
    assert (c.submissions_deleted, c.files_deleted) == (4, 2)
    assert (c.kept_pending, c.kept_recent, c.kept_busy) == (2, 2, 0)  # c, d; f, i
    assert result.complete
    # The form counts the submissions stored: a fresh count, like every counter.
    with app.app_context():
        form = form_submission_counts([form_id(app, form_uid)])[form_id(app, form_uid)]
        roots = db.session.scalar(
            select(func.count()).select_from(Submission).where(Submission.root_id.is_(None))
        )
    assert form == roots == 5
    assert_exact(app)
    (recorded,) = recorded_runs(app)
    assert recorded.finished_at is not None and recorded.complete and recorded.error is None
    assert (recorded.submission_days, recorded.log_days, recorded.trigger) == (30, None, "command")
    assert (recorded.submissions_deleted, recorded.kept_pending) == (4, 2)

    # Idempotent: a second run deletes nothing and keeps the same ones.
    again = run(app)
    assert counts(app) == after and again.counts.submissions_deleted == 0
    assert (again.counts.kept_pending, again.counts.kept_recent) == (2, 2)
    assert_exact(app)


def test_kept_ones_go_once_nothing_keeps_them(app, client, make, endpoint):
    """Delivered at last, and the edit old enough: the next run deletes them."""
    build_history(app, client, make, endpoint)
    run(app)
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(locked_until=None))
        db.session.commit()
    endpoint.statuses = [200]
    run_worker(app)  # c and d delivered
    age(app, ["uuid:f2", "uuid:i"], 31)
    result = run(app)
    assert result.counts.submissions_deleted == 4  # c, d, f (two versions), i
    assert instance_ids(app) == {"uuid:h"}
    assert_exact(app)


def test_batches_commit_one_by_one_and_a_run_stops_at_its_cap(app, client, make):
    from sqlalchemy import event

    form_uid, token = make.form()
    other_uid, other_token = make.form(name="Other")
    make.hook(form_uid)
    old = [f"uuid:old-{n}" for n in range(12)]
    for instance_id in old:
        post(client, form_uid, token, instance_id)
    post(client, other_uid, other_token, "uuid:other-old")
    post(client, form_uid, token, "uuid:young")
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(status="success"))
        db.session.commit()
    age(app, [*old, "uuid:other-old"], 31)
    commits = []

    def count_commit(connection):
        commits.append(1)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", count_commit)
    try:
        first = run(app, batch_size=5, max_per_run=6)
    finally:
        event.remove(engine, "commit", count_commit)
    # Two batches of 5: the second passed the cap, and the run stopped there.
    assert (first.counts.submissions_deleted, first.complete) == (10, False)
    assert len(instance_ids(app)) == 4
    # One transaction per batch, besides the run's start and end.
    assert len(commits) == 1 + 2 + 1
    rest = run(app, batch_size=5)
    assert (rest.counts.submissions_deleted, rest.complete) == (3, True)
    assert instance_ids(app) == {"uuid:young"}
    assert_exact(app)
