"""Polling a real ODK Central: new submissions arrive once, review changes send nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from tests.helpers import Endpoint
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission


def _submissions(app, form_uid: str) -> dict[str, Submission]:
    from webapp.models import Form

    with app.app_context():
        rows = db.session.scalars(
            select(Submission).join(Form).where(Form.uid == form_uid).order_by(Submission.id)
        ).all()
        for row in rows:
            db.session.expunge(row)
        return {row.instance_id: row for row in rows}


def _log_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(DeliveryLog))


def test_submissions_made_in_central_arrive_at_a_hook_once(app, make, central, sources, endpoint):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    before = central.submit(project, form_id, name="made before connecting")
    source_id = sources.connect(form_uid, project, form_id)

    by_rest = central.submit(project, form_id, name="Ann")
    by_openrosa = central.submit_openrosa(project, form_id, name="Bob")
    sources.poll(source_id)

    received = endpoint.wait_for(2)
    assert len(received) == 2
    stored = _submissions(app, form_uid)
    assert set(stored) == {by_rest, by_openrosa}  # not the one made before connecting
    assert before not in stored
    assert all(row.source_format == "xml" for row in stored.values())
    assert b"<name>Ann</name>" in stored[by_rest].body
    assert {r["headers"]["X-Formhooks-Delivery"] for r in received} == {
        log.uid for log in _logs(app)
    }

    sources.poll(source_id)  # nothing new: nothing stored, nothing sent
    assert set(_submissions(app, form_uid)) == {by_rest, by_openrosa}
    assert _log_count(app) == 2
    state = sources.state(source_id)
    assert state.status == "ok" and state.last_error is None
    assert state.received_count == 2
    assert state.last_polled_at is not None and state.next_poll_at > state.last_polled_at


def _logs(app):
    with app.app_context():
        rows = db.session.scalars(select(DeliveryLog)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_a_review_state_change_sends_nothing(app, make, central, sources, endpoint):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id)
    root = central.submit(project, form_id)
    sources.poll(source_id)
    assert len(endpoint.wait_for(1)) == 1

    central.review(project, form_id, root, "approved")
    central.review(project, form_id, root, "hasIssues")
    sources.poll(source_id)

    assert _log_count(app) == 1
    assert len(endpoint.requests) == 1
    with app.app_context():
        row = db.session.scalar(select(Submission).where(Submission.instance_id == root))
        assert row.edit_count == 0
    assert sources.state(source_id).received_count == 1


def test_an_edit_in_central_is_stored_as_an_edit(app, make, central, sources, endpoint):
    """A new version (meta/deprecatedID) is an edit: sent only to send_edits hooks."""
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    edits_endpoint = Endpoint()
    try:
        make.hook(form_uid, endpoint=edits_endpoint.url, name="edits", send_edits=True)
        project, form_id = central.new_form()
        source_id = sources.connect(form_uid, project, form_id)
        root = central.submit(project, form_id, name="first")
        sources.poll(source_id)
        second = central.edit(project, form_id, root, root, name="second")
        third = central.edit(project, form_id, root, second, name="third")
        sources.poll(source_id)

        assert len(endpoint.wait_for(1)) == 1
        received = edits_endpoint.wait_for(3)
        assert [r["headers"]["X-Formhooks-Event"] for r in received] == [
            "submission.created",
            "submission.edited",
            "submission.edited",
        ]
        assert {r["headers"]["X-Formhooks-Submission"] for r in received} == {root}
        assert sorted(r["body"].count(b'"name":"third"') for r in received) == [0, 0, 1]
        stored = _submissions(app, form_uid)
        assert set(stored) == {root, second, third}
        assert all(row.received for row in stored.values())
        assert stored[root].root_id is None
        assert stored[second].root_instance_id == root
        assert stored[second].deprecated_id == root
        assert stored[third].root_instance_id == root
        assert stored[third].deprecated_id == second
        assert sources.state(source_id).received_count == 3

        assert _log_count(app) == 4  # the creation to both hooks, two edits to one
        central.review(project, form_id, root, "approved")  # a review after edits: nothing
        sources.poll(source_id)
        assert _log_count(app) == 4
        assert set(_submissions(app, form_uid)) == {root, second, third}
        assert len(endpoint.requests) == 1
        assert len(edits_endpoint.requests) == 3
    finally:
        edits_endpoint.close()
