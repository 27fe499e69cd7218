"""End to end: a backfill through the real web process, worker.py killed halfway and restarted."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import insert, select

from tests.helpers import Endpoint, load_logs, nothing_left_to_send, wait_until
from webapp.extensions import db
from webapp.models import ApiToken, Form, Submission, User
from webapp.models.base import utcnow

pytestmark = pytest.mark.e2e

COUNT = 300


def test_a_worker_killed_mid_backfill_is_replaced_and_each_submission_is_sent_once(
    app, make, stack
):
    stack.env["BULK_BATCH_SIZE"] = "20"
    stack.env["DELIVERY_TIMEOUT"] = "2"  # lease: 2 * 2 + 5 = 9 s, for a send cut by the kill
    endpoint = Endpoint()
    endpoint.delay = 0.02  # slow enough that the kill lands mid-backfill
    try:
        form_uid, _ = make.form()
        hook_uid = make.hook(form_uid, endpoint=endpoint.url)
        with app.app_context():
            form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
            now = utcnow()
            db.session.execute(
                insert(Submission),
                [
                    {
                        "form_id": form_id,
                        "instance_id": f"uuid:e2e-{n}",
                        "root_instance_id": f"uuid:e2e-{n}",
                        "source_format": "json",
                        "content_type": "application/json",
                        "body": b'{"n": %d}' % n,
                        "data": {"n": n},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(COUNT)
                ],
            )
            _, token = ApiToken.issue(User.by_email("alice@example.org"), name="e2e")
            db.session.commit()
        stack.start_all()
        url = f"{stack.base_url}/api/v1/forms/{form_uid}/hooks/{hook_uid}/backfill"
        headers = {"Authorization": f"Token {token}"}
        answer = requests.post(url, json={"since": "2000-01-01"}, headers=headers, timeout=10)
        assert answer.status_code == 202, answer.text
        assert answer.json()["logs"] == COUNT
        progress_url = answer.headers["Location"]

        endpoint.wait_for(COUNT // 4, timeout=60)
        stack.kill("worker")  # SIGKILL to worker.py's whole group, mid-backfill
        killed_at = len(endpoint.requests)
        assert killed_at < COUNT, "the backfill ended before the kill: slow the endpoint"
        stack.start("worker")

        def done() -> bool:
            shown = requests.get(progress_url, headers=headers, timeout=10).json()
            return shown["state"] == "done"

        wait_until(done, 120, "the backfill to finish", stack.logs)
        shown = requests.get(progress_url, headers=headers, timeout=10).json()
        assert (shown["created"], shown["succeeded"], shown["failed"]) == (COUNT, COUNT, 0)
        assert nothing_left_to_send(app, stack.env["REDIS_URL"]) == {}

        logs = load_logs(app)
        assert len(logs) == COUNT
        assert len({row.submission_id for row in logs}) == COUNT  # one log per submission
        assert all(row.status == "success" for row in logs)
        # Each was received; twice only if the kill cut its send (at least once, per uid).
        received: dict[str, int] = {}
        for request in endpoint.requests:
            uid = request["headers"]["X-Formhooks-Delivery"]
            received[uid] = received.get(uid, 0) + 1
        for row in logs:
            interrupted = [a for a in row.attempts if a.outcome == "error"]
            assert 1 <= received[row.uid] <= 1 + len(interrupted), row.uid
    finally:
        endpoint.close()
