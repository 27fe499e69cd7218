"""Retention beside ingest: what is posted while a run deletes is never lost.

A run deletes in batches while posts arrive: new submissions, edits and
re-posts of the very submissions being deleted. Whatever the order, each
post ends up stored (kept with its submission, or as a new one), and the
counters stay exact. On PostgreSQL the exact interleaving that used to lose
a re-post (the run locks a version, the re-post waits for it, the run
deletes it) is driven step by step.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text, update

from tests.attachments.attachment_support import INSTANCE, INSTANCE_ID, collect_upload, photo
from tests.helpers import assert_exact, wait_until
from tests.retention.retention_support import age, instance_ids, post, run
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission
from webapp.models.base import utcnow
from webapp.retention.submissions import delete_submissions


@pytest.fixture
def app_env(app_env):
    app_env["SUBMISSION_RETENTION_DAYS"] = "30"
    return app_env


def deliver_all(app) -> None:
    """Mark every log delivered (the worker's part does not matter here)."""
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(status="success", next_retry_at=None))
        db.session.commit()


def current_q(app) -> dict[str, object]:
    """{instance id: its data's `q` as last received} of every received version."""
    with app.app_context():
        rows = db.session.scalars(select(Submission).where(Submission.received.is_(True))).all()
        return {row.instance_id: row.current_data.get("q") for row in rows}


def test_posts_during_a_run_are_all_kept(app, make):
    form_uid, token = make.form()
    make.hook(form_uid, send_edits=True)
    client = app.test_client()
    old = [f"uuid:old-{n}" for n in range(240)]
    for instance_id in old:
        post(client, form_uid, token, instance_id)
    deliver_all(app)
    age(app, old, 40)
    errors: list[BaseException] = []

    def retention() -> None:
        try:
            run(app, batch_size=7)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=retention)
    thread.start()
    new, edits, reposts = [], {}, {}
    for n in range(0, 240, 8):  # while the run goes through them, oldest first
        new.append(f"uuid:new-{n}")
        post(client, form_uid, token, new[-1])
        edits[f"uuid:edit-{n}"] = old[n + 1]
        post(client, form_uid, token, f"uuid:edit-{n}", q=2, deprecatedID=old[n + 1])
        reposts[old[n + 2]] = 3
        post(client, form_uid, token, old[n + 2], q=3)
    thread.join(120)
    assert not thread.is_alive() and errors == []

    stored = current_q(app)
    assert all(stored.get(instance_id) == 1 for instance_id in new)
    assert all(stored.get(instance_id) == 2 for instance_id in edits)
    assert all(stored.get(instance_id) == 3 for instance_id in reposts)
    with app.app_context():
        waiting = (
            select(Submission.instance_id).join(DeliveryLog).where(DeliveryLog.status == "pending")
        )
        pending = set(db.session.scalars(waiting))
    assert set(new) <= pending  # new submissions and their logs are all there
    assert_exact(app)
    # Whatever the run left of the untouched old ones, the next run deletes.
    deliver_all(app)
    run(app)
    untouched = set(old) - set(edits.values()) - set(reposts)
    assert not untouched & instance_ids(app)
    assert_exact(app)


def waiting_for_a_lock(engine) -> int:
    """How many sessions of this database wait for a lock now (a fresh statistics snapshot)."""
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
        ).scalar()


@pytest.mark.parametrize("path", ["json", "openrosa"])
def test_a_repost_waiting_for_a_deleted_version_is_stored_as_new(app, db_backend, make, path):
    """PostgreSQL: the run holds the version's lock, the re-post with another
    body waits for it, the run deletes the version and commits: the re-post
    is then stored as a new submission, not answered "stored" and lost."""
    if db_backend[0] != "postgresql":
        pytest.skip("PostgreSQL only: on SQLite a run holds the only write lock")
    form_uid, token = make.form()
    make.hook(form_uid)
    client = app.test_client()

    def send(members: int):
        if path == "json":
            return post(client, form_uid, token, INSTANCE_ID, q=members)
        xml = INSTANCE.replace(b"<members>6</members>", f"<members>{members}</members>".encode())
        return collect_upload(client, form_uid, token, xml=xml, files=[photo(1)])

    send(6)
    deliver_all(app)
    age(app, [INSTANCE_ID], 40)
    answers = []
    with app.app_context():
        version = db.session.scalar(
            select(Submission.id).where(Submission.instance_id == INSTANCE_ID).with_for_update()
        )
        poster = threading.Thread(target=lambda: answers.append(send(7)))
        poster.start()
        wait_until(lambda: waiting_for_a_lock(db.engine), what="the re-post to wait for the lock")
        deleted = delete_submissions([version], utcnow())
        db.session.commit()
    poster.join(30)
    assert deleted.submissions_deleted == 1 and len(answers) == 1
    with app.app_context():
        (stored,) = db.session.scalars(
            select(Submission).where(Submission.instance_id == INSTANCE_ID)
        ).all()
        assert stored.id != version and stored.root_id is None
        assert stored.edit_count == 0  # a submission of its own, as posted
        if path == "json":
            assert stored.data["q"] == 7
        else:
            assert b"<members>7</members>" in stored.body
        logs = db.session.scalars(
            select(DeliveryLog.status).where(DeliveryLog.submission_id == stored.id)
        ).all()
    assert logs == ["pending"]
    assert_exact(app)
