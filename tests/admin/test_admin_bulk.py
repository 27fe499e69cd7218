"""The "Send again" page of a hook: backfill and replay forms, progress, cancel.

Login, CSRF and the viewers' 403 on every POST are checked for every admin
route by test_admin_urlmap.py; here, what the page does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.admin.admin_support import add_logs, post_submission
from tests.helpers import LOOPBACK_HOOKS, bulk_log_count, nothing_left_to_send, run_worker
from webapp.extensions import db
from webapp.models import BulkSend, DeliveryLog

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


@pytest.fixture
def world(app, client, make, endpoint):
    """Three submissions received before the hook existed."""
    form_uid, token = make.form()
    for n in range(3):
        post_submission(client, form_uid, token, {"n": n, "meta": {"instanceID": f"uuid:{n}"}})
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    return form_uid, hook_uid, f"/forms/{form_uid}/hooks/{hook_uid}/bulk"


def bulk_sends(app) -> list[BulkSend]:
    with app.app_context():
        rows = db.session.scalars(select(BulkSend).order_by(BulkSend.id)).all()
        db.session.expunge_all()
        return rows


def test_an_editor_sends_the_existing_submissions_and_sees_them_done(app, editor, world, endpoint):
    form_uid, hook_uid, page = world
    hook_page = editor.get(f"/forms/{form_uid}/hooks/{hook_uid}").text
    assert f'href="{page}"' in hook_page  # "Send again", next to "Logs"
    shown = editor.get(page)
    assert shown.status_code == 200
    assert "Send existing submissions" in shown.text and "Nothing yet." in shown.text
    response = editor.post(
        page + "/backfill", {"backfill-since": "2000-01-01", "backfill-until": ""}
    )
    assert response.status_code == 302 and response.headers["Location"] == page
    [send] = bulk_sends(app)
    assert (send.kind, send.total, send.requested_by) == ("backfill", 3, "editor@example.org")
    listed = editor.get(page).text
    assert "3 submissions will be sent in the background." in listed
    assert f'data-progress-url="{page}/{send.uid}/progress"' in listed
    assert "Running" in listed and f"{page}/{send.uid}/cancel" in listed

    run_worker(app)
    assert len(endpoint.requests) == 3
    progress = editor.get(f"{page}/{send.uid}/progress")
    assert progress.headers["Content-Type"] == "application/json"
    assert progress.headers["Cache-Control"] == "no-store"
    assert {k: progress.json[k] for k in ("state", "total", "sent", "succeeded", "percent")} == {
        "state": "done",
        "total": 3,
        "sent": 3,
        "succeeded": 3,
        "percent": 100,
    }
    done = editor.get(page).text
    assert "data-progress-url" not in done  # nothing left to follow
    assert f"{page}/{send.uid}/cancel" not in done


@pytest.mark.parametrize(
    ("action", "fields", "slot", "message"),
    [
        (
            "backfill",
            {"backfill-since": "2026-03-05", "backfill-until": "2026-03-04"},
            "backfill-until",
            "Must not be before since.",
        ),
        (
            "backfill",
            {"backfill-since": "5 March"},
            "backfill-since",
            "&#39;5 March&#39; is not an ISO 8601 date or date-time.",
        ),
        (
            "replay",
            {"replay-status": "pending"},
            "replay-status",
            "Choose &#34;failed&#34;, &#34;success&#34;, or a list of both.",
        ),
    ],
)
def test_bad_dates_are_shown_next_to_their_field_and_start_nothing(
    app, editor, world, action, fields, slot, message
):
    _, _, page = world
    response = editor.post(f"{page}/{action}", fields)
    assert response.status_code == 400
    assert "Nothing was started" in response.text
    assert f'id="{slot}-error"' in response.text and message in response.text
    assert bulk_sends(app) == []
    assert nothing_left_to_send(app) == {}


def test_a_disabled_hook_cannot_be_sent_to(app, editor, world, make):
    form_uid, hook_uid, page = world
    assert editor.post(f"/forms/{form_uid}/hooks/{hook_uid}/toggle").status_code == 302
    response = editor.post(page + "/replay", {"replay-status": "both"})
    assert response.status_code == 400
    assert "The REST service is disabled: enable it first." in response.text
    assert bulk_sends(app) == []


def test_replay_of_both_statuses_then_cancel(app, editor, world, endpoint):
    _, hook_uid, page = world
    add_logs(app, hook_uid, 2, status="failed")
    add_logs(app, hook_uid, 1, status="success")
    response = editor.post(page + "/replay", {"replay-status": "both"})
    assert response.status_code == 302
    [send] = bulk_sends(app)
    assert (send.kind, send.statuses, send.total) == ("replay", ["failed", "success"], 3)
    assert "3 deliveries will be sent again in the background." in editor.get(page).text
    cancelled = editor.post(f"{page}/{send.uid}/cancel")
    assert cancelled.status_code == 302
    assert "Cancelled: nothing more of it will be sent." in editor.get(page).text
    [send] = bulk_sends(app)
    assert send.state == "cancelled" and send.finished_at is not None
    with app.app_context():  # nothing was made: the logs are as they were
        statuses = db.session.scalars(select(DeliveryLog.status).order_by(DeliveryLog.id)).all()
        assert sorted(statuses) == ["failed", "failed", "success"]
    assert bulk_log_count(app) == 0
    again = editor.post(f"{page}/{send.uid}/cancel")
    assert again.status_code == 302
    assert "It had already finished." in editor.get(page).text
    run_worker(app)
    assert endpoint.requests == []


def test_a_viewer_sees_the_progress_but_no_form(app, as_role, editor, world):
    _, _, page = world
    editor.post(page + "/backfill", {})
    [send] = bulk_sends(app)
    viewer = as_role("viewer")
    shown = viewer.get(page)
    assert shown.status_code == 200
    assert "Existing submissions" in shown.text and "data-progress-url" in shown.text
    assert "/bulk/backfill" not in shown.text and "/cancel" not in shown.text
    assert viewer.get(f"{page}/{send.uid}/progress").json["state"] == "running"
    assert viewer.get(f"{page}/bkNOPE/progress").status_code == 404
