"""Backfill and replay through the API, sent by a real RQ worker to a real endpoint.

On SQLite and PostgreSQL: what a 202 counts is what is sent, each
submission once; replays keep each delivery's uid and start a new series;
cancel stops what was not sent; bad input changes nothing; viewers may
only look.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from tests.helpers import assert_exact, bulk_log_count, nothing_left_to_send, run_worker
from webapp.bulk.fill import fill
from webapp.delivery import feed
from webapp.extensions import db
from webapp.models import BulkSend, DeliveryLog, Hook, Submission


def post(client, form_uid: str, token: str, instance_id: str | None = None, **data) -> str:
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=json.dumps(
            {"q": data.get("q", 1), "meta": {"instanceID": instance_id, **data.get("meta", {})}}
        ),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.text
    return instance_id


def hook_path(form_uid: str, hook_uid: str) -> str:
    return f"/api/v1/forms/{form_uid}/hooks/{hook_uid}"


def hook_id(app, hook_uid: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Hook.id).where(Hook.uid == hook_uid))


def logs_of(app, hook_uid: str) -> list[DeliveryLog]:
    with app.app_context():
        rows = db.session.scalars(
            select(DeliveryLog).join(Hook).where(Hook.uid == hook_uid).order_by(DeliveryLog.id)
        ).all()
        for row in rows:
            _ = row.attempts
        db.session.expunge_all()
        return rows


def received_ids(endpoint) -> list[str]:
    return [r["headers"]["X-Formhooks-Delivery"] for r in endpoint.requests]


@pytest.fixture
def setup(app, client, make, endpoint):
    """A form with 5 submissions; hook "late" added after the first 3 (it has logs for 2)."""
    form_uid, token = make.form()
    instances = [post(client, form_uid, token) for _ in range(3)]
    late = make.hook(form_uid, endpoint=endpoint.url, name="late")
    instances += [post(client, form_uid, token) for _ in range(2)]
    run_worker(app)
    assert len(endpoint.requests) == 2
    endpoint.requests.clear()
    return form_uid, token, late, instances


def test_a_backfill_sends_each_submission_the_hook_missed_once(app, api, setup, endpoint):
    form_uid, _, late, instances = setup
    response = api.post(hook_path(form_uid, late) + "/backfill", json={})
    assert response.status_code == 202, response.text
    body = response.json
    assert body["logs"] == 3
    assert response.headers["Location"] == body["url"]
    assert body["url"].endswith(f"/hooks/{late}/bulk/{body['uid']}")

    running = api.get(body["url"]).json
    assert running["state"] == "running" and running["total"] == 3 and running["kind"] == "backfill"

    run_worker(app)
    rows = logs_of(app, late)
    assert len(rows) == 5 and len({row.submission_id for row in rows}) == 5
    assert all(row.status == "success" for row in rows)
    bulk_rows = [row for row in rows if row.bulk_id is not None]
    assert len(bulk_rows) == 3
    assert sorted(received_ids(endpoint)) == sorted(row.uid for row in bulk_rows)
    sent = sorted(json.loads(r["body"])["meta"]["instanceID"] for r in endpoint.requests)
    assert sent == sorted(instances[:3])

    done = api.get(body["url"]).json
    assert done["state"] == "done"
    assert (done["created"], done["sent"], done["succeeded"], done["failed"]) == (3, 3, 3, 0)
    assert done["percent"] == 100 and done["requested_by"] == "alice@example.org"
    assert nothing_left_to_send(app) == {}
    assert_exact(app)

    # Again: nothing is missing any more.
    again = api.post(hook_path(form_uid, late) + "/backfill", json={})
    assert again.status_code == 202 and again.json["logs"] == 0
    assert api.get(again.json["url"]).json["state"] == "done"
    listed = api.get(hook_path(form_uid, late) + "/bulk").json
    assert [b["uid"] for b in listed["results"]] == [again.json["uid"], body["uid"]]


def test_a_backfill_takes_the_submissions_of_its_dates(app, api, client, make, endpoint):
    form_uid, token = make.form()
    for _ in range(4):
        post(client, form_uid, token)
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    days = [datetime(2026, 3, d, 12, tzinfo=UTC) for d in (1, 2, 3, 4)]
    with app.app_context():
        ids = db.session.scalars(select(Submission.id).order_by(Submission.id)).all()
        for sub_id, day in zip(ids, days, strict=True):
            db.session.execute(
                update(Submission).where(Submission.id == sub_id).values(created_at=day)
            )
        db.session.commit()
    path = hook_path(form_uid, hook_uid) + "/backfill"
    # A date `until` includes its day; a date-time is the exclusive end.
    assert api.post(path, json={"since": "2026-03-02", "until": "2026-03-03"}).json["logs"] == 2
    assert api.post(path, json={"until": "2026-03-02T12:00:00Z"}).json["logs"] == 1
    assert api.post(path, json={"since": "2026-03-04T12:00:00+02:00"}).json["logs"] == 1
    assert api.post(path, json={"since": "2026-03-05"}).json["logs"] == 0
    run_worker(app)
    # The second and third overlap nothing the first took; each submission is sent once.
    rows = logs_of(app, hook_uid)
    assert len(rows) == 4 and len({row.submission_id for row in rows}) == 4
    assert len(endpoint.requests) == 4


def test_a_backfill_sends_the_current_version(app, api, client, make, endpoint):
    form_uid, token = make.form()
    original = post(client, form_uid, token, q="first")
    post(client, form_uid, token, q="second", meta={"deprecatedID": original})
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)  # send_edits off
    response = api.post(hook_path(form_uid, hook_uid) + "/backfill", json={})
    assert response.json["logs"] == 1
    run_worker(app)
    [received] = endpoint.requests
    assert json.loads(received["body"])["q"] == "second"
    assert received["headers"]["X-Formhooks-Event"] == "submission.edited"
    assert received["headers"]["X-Formhooks-Submission"] == original
    # The submission has a log now (on its latest version): a backfill skips it.
    assert api.post(hook_path(form_uid, hook_uid) + "/backfill", json={}).json["logs"] == 0


def test_overlapping_backfills_send_each_submission_once(app, api, setup, endpoint):
    form_uid, _, late, _ = setup
    path = hook_path(form_uid, late) + "/backfill"
    first = api.post(path, json={}).json
    second = api.post(path, json={"since": "2000-01-01"}).json
    assert first["logs"] == second["logs"] == 3  # counted before either made a log
    run_worker(app)
    assert len(logs_of(app, late)) == 5
    assert len(endpoint.requests) == 3 and len(set(received_ids(endpoint))) == 3
    made = [api.get(b["url"]).json["created"] for b in (first, second)]
    assert sum(made) == 3 and all(
        api.get(b["url"]).json["state"] == "done" for b in (first, second)
    )
    assert_exact(app)


SMALL_BATCHES = pytest.mark.settings(BULK_BATCH_SIZE="2")


@SMALL_BATCHES
def test_logs_are_made_in_bounded_batches_as_the_lane_empties(app, api, client, make, endpoint):
    form_uid, token = make.form()
    for _ in range(9):
        post(client, form_uid, token)
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    body = api.post(hook_path(form_uid, hook_uid) + "/backfill", json={}).json
    assert body["logs"] == 9
    with app.app_context():
        assert fill() == 4  # two batches of 2: the lane holds two batches at most
        assert feed.bulk_waiting() == 4
        assert fill() == 0  # full: nothing more until a drainer takes some
    assert api.get(body["url"]).json["created"] == 4
    assert len(logs_of(app, hook_uid)) == 4
    run_worker(app)
    assert len(endpoint.requests) == 9 and len(set(received_ids(endpoint))) == 9
    progress = api.get(body["url"]).json
    assert (progress["state"], progress["created"], progress["succeeded"]) == ("done", 9, 9)


@SMALL_BATCHES
def test_cancel_drops_the_logs_not_sent_and_makes_no_more(app, api, client, make, endpoint):
    form_uid, token = make.form()
    for _ in range(9):
        post(client, form_uid, token)
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    body = api.post(hook_path(form_uid, hook_uid) + "/backfill", json={}).json
    with app.app_context():
        fill()
    cancelled = api.post(body["url"] + "/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json["state"] == "cancelled" and cancelled.json["finished_at"]
    assert (cancelled.json["created"], cancelled.json["sent"]) == (4, 0)
    assert logs_of(app, hook_uid) == []  # never sent: deleted
    assert nothing_left_to_send(app) == {}  # so no send can happen: no worker run needed
    run_worker(app)
    assert endpoint.requests == []
    again = api.post(body["url"] + "/cancel")
    assert again.status_code == 400
    assert again.json == {
        "errors": {"state": ["Only a running send can be cancelled; this one is cancelled."]}
    }
    assert_exact(app)


def test_cancel_fails_what_waits_for_a_retry(app, api, client, make, endpoint):
    form_uid, token = make.form()
    for _ in range(3):
        post(client, form_uid, token)
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    endpoint.statuses = [500]
    body = api.post(hook_path(form_uid, hook_uid) + "/backfill", json={}).json
    run_worker(app)  # each tried once; retries scheduled (not run: rq-scheduler is not)
    assert len(endpoint.requests) == 3
    assert api.get(body["url"]).json["pending"] == 3
    cancelled = api.post(body["url"] + "/cancel").json
    assert cancelled["state"] == "cancelled"
    assert (cancelled["sent"], cancelled["failed"], cancelled["pending"]) == (3, 3, 0)
    rows = logs_of(app, hook_uid)
    assert [row.status for row in rows] == ["failed"] * 3
    assert all(row.reported_at is not None and "Cancelled" in row.message for row in rows)
    assert nothing_left_to_send(app) == {}  # the scheduled retries are gone too
    assert_exact(app)


def test_a_replay_resends_with_the_same_uid_in_a_new_series(app, api, worker, setup, endpoint):
    form_uid, token, late, _ = setup
    before = {row.uid: row for row in logs_of(app, late)}
    assert len(before) == 2
    post(api.client, form_uid, token)  # pending when the replay is asked: not replayed
    response = api.post(hook_path(form_uid, late) + "/replay", json={"status": "success"})
    assert response.status_code == 202 and response.json["logs"] == 2
    worker()
    after = {row.uid: row for row in logs_of(app, late)}
    assert len(after) == 3
    replayed = [after[uid] for uid in before]
    assert all(row.status == "success" and row.tries == 1 for row in replayed)
    assert all([a.number for a in row.attempts] == [1, 1] for row in replayed)
    [new] = [row for uid, row in after.items() if uid not in before]
    assert len(new.attempts) == 1 and new.bulk_id is None
    # Each replayed log sent again with its uid (the setup cleared the first sends).
    assert sorted(received_ids(endpoint)) == sorted(after)
    progress = api.get(response.json["url"]).json
    assert (progress["kind"], progress["statuses"], progress["succeeded"]) == (
        "replay",
        ["success"],
        2,
    )
    assert_exact(app)


@SMALL_BATCHES
def test_a_replay_takes_only_its_statuses_and_a_cancel_restores_what_it_did_not_send(
    app, api, worker, client, make, endpoint
):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    endpoint.statuses = [500] * 16 + [200]
    for _ in range(4):
        post(client, form_uid, token)
    worker()  # 4 attempts each: failed
    post(client, form_uid, token)
    worker()  # the fifth succeeds
    before = {row.uid: row for row in logs_of(app, hook_uid)}
    assert sorted(row.status for row in before.values()) == ["failed"] * 4 + ["success"]
    sent_before = len(endpoint.requests)

    body = api.post(hook_path(form_uid, hook_uid) + "/replay", json={"status": ["failed"]}).json
    assert body["logs"] == 4
    with app.app_context():
        assert fill() == 4  # both batches made (restarted), none sent
    cancelled = api.post(body["url"] + "/cancel").json
    assert (cancelled["state"], cancelled["sent"]) == ("cancelled", 0)
    after = {row.uid: row for row in logs_of(app, hook_uid)}
    for uid, row in after.items():
        old = before[uid]
        assert (row.status, row.tries, row.status_code, row.message, row.bulk_id) == (
            old.status,
            old.tries,
            old.status_code,
            old.message,
            None,
        )
        assert len(row.attempts) == len(old.attempts)
    assert nothing_left_to_send(app) == {}
    worker()
    assert len(endpoint.requests) == sent_before
    assert_exact(app)


@pytest.mark.parametrize(
    ("path", "payload", "errors"),
    [
        (
            "backfill",
            {"since": "yesterday"},
            {"since": ["'yesterday' is not an ISO 8601 date or date-time."]},
        ),
        (
            "backfill",
            {"since": "2026-03-05", "until": "2026-03-04"},
            {"until": ["Must not be before since."]},
        ),
        ("backfill", {"since": 20260305}, {"since": ["Must be text."]}),
        ("backfill", {"from": "2026-03-05"}, {"from": ["Unknown field."]}),
        (
            "backfill",
            {"since": "2999-01-01"},
            {"since": ["Must not be in the future (until is now when not given)."]},
        ),
        (
            "replay",
            {"status": "pending"},
            {"status": ['Choose "failed", "success", or a list of both.']},
        ),
        (
            "replay",
            {"status": ["failed", 3]},
            {"status": ['Choose "failed", "success", or a list of both.']},
        ),
    ],
)
def test_bad_input_is_refused_and_starts_nothing(app, api, setup, path, payload, errors):
    form_uid, _, late, _ = setup
    response = api.post(hook_path(form_uid, late) + f"/{path}", json=payload)
    assert response.status_code == 400
    assert response.json == {"errors": errors}
    _assert_nothing_started(app)


def test_a_disabled_hook_or_a_malformed_body_starts_nothing(app, api, setup):
    form_uid, _, late, _ = setup
    path = hook_path(form_uid, late)
    malformed = api.open(
        "POST", path + "/backfill", data="{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and "Malformed JSON" in malformed.text
    assert api.patch(path, json={"active": False}).status_code == 200
    refused = api.post(path + "/replay", json={})
    assert refused.status_code == 400
    assert refused.json == {
        "errors": {"non_field_errors": ["The REST service is disabled: enable it first."]}
    }
    _assert_nothing_started(app)


def _assert_nothing_started(app):
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkSend)) == 0
    assert bulk_log_count(app) == 0
    assert nothing_left_to_send(app) == {}


def test_viewers_may_look_but_not_start_or_cancel(app, api, setup):
    form_uid, _, late, _ = setup
    path = hook_path(form_uid, late)
    viewer = api.as_role("viewer")
    assert viewer.post(path + "/backfill", json={}).status_code == 403
    assert viewer.post(path + "/replay", json={}).status_code == 403
    _assert_nothing_started(app)
    body = api.as_role("admin").post(path + "/backfill", json={}).json
    assert viewer.get(body["url"]).status_code == 200
    assert viewer.get(path + "/bulk").json["count"] == 1
    assert viewer.post(body["url"] + "/cancel").status_code == 403
    assert api.get(body["url"]).json["state"] == "running"
    assert api.client.get(body["url"]).status_code == 401  # no token
    assert api.get(path + "/bulk/bkNOPE").status_code == 404


def test_deleting_a_hook_or_form_takes_its_bulk_sends_and_their_logs(app, api, setup):
    form_uid, _, late, _ = setup
    path = hook_path(form_uid, late)
    first = api.post(path + "/backfill", json={}).json
    with app.app_context():
        fill()
    assert api.get(first["url"]).json["created"] == 3
    assert api.delete(path).status_code == 204
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BulkSend)) == 0
        assert db.session.scalar(select(func.count()).select_from(DeliveryLog)) == 0
    assert api.delete(f"/api/v1/forms/{form_uid}").status_code == 204
    assert_exact(app)
