"""Backfills racing each other, live ingest and a cancel, on PostgreSQL (SQLite has one
writer at a time, so nothing there runs at once).

Threads start together at a barrier; whatever order the database picks, no
delivery log is made twice for a version, no statement fails, and the
counters stay exact.
"""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from sqlalchemy import func, select

from tests.helpers import assert_exact
from webapp.bulk.batches import next_batch
from webapp.bulk.cancel import cancel
from webapp.bulk.ranges import Range
from webapp.bulk.start import start_backfill
from webapp.extensions import db
from webapp.models import PENDING, BulkSend, DeliveryLog, Hook, Submission
from webapp.models.base import utcnow


@pytest.fixture(autouse=True)
def postgresql_only(db_backend):
    if db_backend[0] != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has one writer at a time")


def post(client, form_uid: str, token: str, instance_id: str, q: int = 1, **meta) -> None:
    body = {"q": q, "meta": {"instanceID": instance_id, **meta}}
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.text


def run_together(*targets) -> None:
    """Run each target in its own thread (and app context), started at one barrier."""
    barrier = threading.Barrier(len(targets), timeout=30)
    errors: list[BaseException] = []

    def wrap(target):
        def run():
            try:
                barrier.wait()
                target()
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(target)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_overlapping_backfills_and_live_edits_make_one_log_per_version(app, client, make):
    form_uid, token = make.form()
    originals = [f"uuid:{uuid.uuid4()}" for _ in range(60)]
    for instance_id in originals:
        post(client, form_uid, token, instance_id)
    hook_uid = make.hook(form_uid, send_edits=True)  # its endpoint is never called here
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        bulk_ids = [start_backfill(hook, Range(None, utcnow()), "tests").id for _ in range(3)]
        assert [db.session.get(BulkSend, b).total for b in bulk_ids] == [60, 60, 60]

    def filler(bulk_id):
        def run():
            with app.app_context():
                while next_batch(bulk_id, 7) is not None:
                    pass

        return run

    def editor():
        with app.app_context():
            live = app.test_client()
            for number, original in enumerate(originals[::6]):
                post(live, form_uid, token, f"uuid:{uuid.uuid4()}", q=number, deprecatedID=original)

    run_together(*(filler(b) for b in bulk_ids), editor)
    with app.app_context():
        logs = db.session.execute(
            select(DeliveryLog.submission_id, DeliveryLog.bulk_id, Submission.root_id).join(
                Submission, Submission.id == DeliveryLog.submission_id
            )
        ).all()
        versions = [row.submission_id for row in logs]
        assert len(versions) == len(set(versions))  # one log per version, at most
        chains: dict[int, int] = {}
        for row in logs:
            root = row.root_id or row.submission_id
            chains[root] = chains.get(root, 0) + 1
        assert len(chains) == 60  # every submission has its log...
        twice = [root for root, n in chains.items() if n != 1]
        assert len(twice) <= 10  # ...and only an edited one may have two (one per version)
        made = sum(db.session.get(BulkSend, b).created for b in bulk_ids)
        assert made == sum(1 for row in logs if row.bulk_id is not None)
        assert all(db.session.get(BulkSend, b).filled_at is not None for b in bulk_ids)
    assert_exact(app)


def test_a_cancel_during_a_batch_leaves_nothing_of_it_to_send(app, client, make):
    form_uid, token = make.form()
    for _ in range(200):
        post(client, form_uid, token, f"uuid:{uuid.uuid4()}")
    hook_uid = make.hook(form_uid)
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        bulk_id = start_backfill(hook, Range(None, utcnow()), "tests").id
    answers: list[bool] = []

    def filler():
        with app.app_context():
            while next_batch(bulk_id, 5) is not None:
                pass

    def canceller():
        with app.app_context():
            answers.append(cancel(db.session.get(BulkSend, bulk_id)))

    run_together(filler, canceller)
    with app.app_context():
        bulk = db.session.get(BulkSend, bulk_id)
        assert answers == [True] and bulk.state == "cancelled"
        # Whichever batch was being made when the cancel came, none of its logs is left.
        left = db.session.scalar(
            select(func.count())
            .select_from(DeliveryLog)
            .where(DeliveryLog.bulk_id == bulk_id, DeliveryLog.status == PENDING)
        )
        assert left == 0
        assert next_batch(bulk_id, 5) is None
        assert bulk.finished_at is not None
    assert_exact(app)
