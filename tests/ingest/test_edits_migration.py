"""Migration 0005_edits_versions on a database filled before it, and back."""

from __future__ import annotations

import json

from flask_migrate import downgrade, upgrade
from sqlalchemy import func, inspect, select, text

from webapp.extensions import db
from webapp.models import Hook, Submission, form_submission_counts
from webapp.models.forms import Form

BEFORE = "0004_form_and_hour_counts"


def test_upgrade_backfills_root_ids_and_keeps_counts_exact(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        db.session.remove()
        try:
            downgrade(revision=BEFORE)
            columns = {c["name"] for c in inspect(db.engine).get_columns("submissions")}
            assert "root_instance_id" not in columns
            with db.engine.begin() as connection:
                for number in range(3):
                    connection.execute(
                        text(
                            "INSERT INTO submissions (form_id, instance_id, source_format,"
                            " content_type, body, data, created_at, updated_at, edit_count)"
                            " VALUES (:form, :iid, 'json', 'application/json', :body, :data,"
                            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
                        ),
                        {
                            "form": form_id,
                            "iid": f"uuid:old-{number}",
                            "body": json.dumps({"q": number}).encode(),
                            "data": json.dumps({"q": number}),
                        },
                    )
            db.session.remove()
            upgrade()
        finally:
            db.session.remove()
            upgrade()  # back at head whatever happened
        rows = db.session.execute(
            select(
                Submission.instance_id,
                Submission.root_instance_id,
                Submission.root_id,
                Submission.received,
                Submission.position,
            ).order_by(Submission.id)
        ).all()
        assert [tuple(row) for row in rows] == [
            (f"uuid:old-{n}", f"uuid:old-{n}", None, True, 0) for n in range(3)
        ]
        assert db.session.scalar(select(Hook.send_edits)) is False
        assert form_submission_counts([form_id]) == {form_id: 3}
    # A submission stored before the migration can be edited; the counters stay exact.
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json={"q": 9, "meta": {"instanceID": "uuid:new", "deprecatedID": "uuid:old-1"}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.json
    assert response.json["edit_of"] == "uuid:old-1"
    with app.app_context():
        assert form_submission_counts([form_id]) == {form_id: 3}
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 4


def test_downgrade_keeps_each_submission_first_version(app, client, make):
    form_uid, token = make.form()
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/forms/{form_uid}/submissions"
    client.post(url, json={"meta": {"instanceID": "uuid:d1"}}, headers=headers)
    client.post(url, json={"meta": {"instanceID": "uuid:d2", "deprecatedID": "uuid:d1"}},
                headers=headers)  # fmt: skip
    with app.app_context():
        form_id = db.session.scalar(select(Form.id).where(Form.uid == form_uid))
        db.session.remove()
        try:
            downgrade(revision=BEFORE)
            with db.engine.connect() as connection:
                kept = connection.execute(text("SELECT instance_id FROM submissions")).all()
                counted = connection.execute(
                    text("SELECT sum(n) FROM form_submission_counts WHERE form_id = :f"),
                    {"f": form_id},
                ).scalar()
            assert [row[0] for row in kept] == ["uuid:d1"]
            assert counted == 1
        finally:
            db.session.remove()
            upgrade()
