"""The API of a form's source: GET, PUT, DELETE; the password is write-only."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api

SECRET = "s3cret-Central-pass"  # noqa: S105


@pytest.fixture
def api(client, tokens) -> Api:
    return Api(client, tokens)


def _settings(**changes):
    return {
        "kind": "odk_central",
        "url": "http://127.0.0.1:9/",
        "project_id": 3,
        "xml_form_id": "household",
        "email": "robot@example.org",
        "password": SECRET,
        **changes,
    }


def test_a_source_is_created_read_changed_and_deleted(api, make):
    form_uid, _ = make.form()
    path = f"/api/v1/forms/{form_uid}/source"
    assert api.get(path).status_code == 404

    created = api.open("PUT", path, json=_settings(since="2026-01-01"))
    assert created.status_code == 201, created.json
    body = created.json
    assert body["kind"] == "odk_central" and body["url"] == "http://127.0.0.1:9"
    assert body["project_id"] == 3 and body["xml_form_id"] == "household"
    assert body["since"] == "2026-01-01T00:00:00Z"
    assert body["active"] is True and body["send_backfill"] is False
    assert body["status"] == "ok" and body["received_count"] == 0
    assert body["last_polled_at"] is None and body["last_error"] is None
    assert "password" not in body

    echoed = dict(api.get(path).json, active=False)  # what a client GETs and PUTs back
    changed = api.open("PUT", path, json=echoed)
    assert changed.status_code == 200, changed.json
    assert changed.json["active"] is False
    with make.app.app_context():
        from webapp.extensions import db
        from webapp.models import Source

        assert db.session.query(Source).one().password == SECRET  # kept: write-only

    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert not any(SECRET in text for text in api.bodies)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"url": "ftp://central.example.org"}, "url"),
        ({"url": "http://10.1.2.3"}, "url"),  # the hooks' SSRF rules
        ({"project_id": "three"}, "project_id"),
        ({"project_id": 0}, "project_id"),
        ({"xml_form_id": ""}, "xml_form_id"),
        ({"email": "not an email"}, "email"),
        ({"password": ""}, "password"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2999-01-01"}, "since"),
        ({"kind": "kobo"}, "kind"),
        ({"active": "yes"}, "active"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_settings_are_refused_field_by_field(api, make, changes, field):
    form_uid, _ = make.form()
    answer = api.open("PUT", f"/api/v1/forms/{form_uid}/source", json=_settings(**changes))
    assert answer.status_code == 400
    assert field in answer.json["errors"], answer.json
    assert api.get(f"/api/v1/forms/{form_uid}/source").status_code == 404


def test_viewers_may_read_but_not_change(api, make):
    form_uid, _ = make.form()
    path = f"/api/v1/forms/{form_uid}/source"
    assert api.open("PUT", path, json=_settings()).status_code == 201
    viewer = api.as_role("viewer")
    assert viewer.get(path).status_code == 200
    assert viewer.open("PUT", path, json={"active": False}).status_code == 403
    assert viewer.delete(path).status_code == 403
    assert api.get(path).json["active"] is True
