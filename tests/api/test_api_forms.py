"""Forms and submissions through the API: fields, validation, pagination, deletion."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import DeliveryLog, Hook, Submission

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\Z")


def ingest(client, form_uid: str, token: str, data: dict) -> dict:
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json=data,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code in (200, 201), response.json
    return response.json


def test_create_get_rename_delete(api):
    response = api.post("/api/v1/forms", json={"name": "  Household survey "})
    assert response.status_code == 201, response.json
    form = response.json
    uid = form["uid"]
    assert response.headers["Location"] == f"http://localhost/api/v1/forms/{uid}"
    assert form["name"] == "Household survey"
    assert form["ingest_url"] == f"http://localhost/api/v1/forms/{uid}/submissions"
    assert len(form["ingest_token"]) > 20
    assert form["owner"] == "alice@example.org"
    assert (form["hook_count"], form["submission_count"]) == (0, 0)
    assert ISO_UTC.match(form["date_created"]), form["date_created"]
    assert datetime.fromisoformat(form["date_created"]).utcoffset().total_seconds() == 0

    response = api.get(f"/api/v1/forms/{uid}")
    assert response.json == form
    assert response.headers["Cache-Control"] == "no-store"  # it shows the ingest token
    # What was read can be sent back with a change: output-only fields are ignored.
    response = api.patch(f"/api/v1/forms/{uid}", json={**form, "name": "Census"})
    assert response.status_code == 200, response.json
    assert response.json["name"] == "Census"
    assert response.json["ingest_token"] == form["ingest_token"]

    assert api.delete(f"/api/v1/forms/{uid}").status_code == 204
    assert api.get(f"/api/v1/forms/{uid}").status_code == 404
    assert api.get("/api/v1/forms").json["count"] == 0


def test_form_validation(api):
    uid = api.post("/api/v1/forms", json={"name": "Kept"}).json["uid"]
    for body, errors in [
        ({}, {"name": ["Enter a name."]}),
        ({"name": "   "}, {"name": ["Enter a name."]}),
        ({"name": 12}, {"name": ["Enter a name."]}),
        ({"name": "x" * 256}, {"name": ["At most 255 characters."]}),
        ({"name": "ok", "colour": "red"}, {"colour": ["Unknown field."]}),
    ]:
        response = api.post("/api/v1/forms", json=body)
        assert (response.status_code, response.json) == (400, {"errors": errors}), body
        if body:
            response = api.patch(f"/api/v1/forms/{uid}", json=body)
            assert (response.status_code, response.json) == (400, {"errors": errors}), body
    assert api.get("/api/v1/forms").json["count"] == 1
    assert api.get(f"/api/v1/forms/{uid}").json["name"] == "Kept"


def test_malformed_bodies_are_400_non_field_errors(api):
    for data, message in [
        (b'{"name": ', "Malformed JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"name": NaN}', "Malformed JSON"),
        (b"\xff\xfe", "Malformed JSON"),
    ]:
        response = api.post(
            "/api/v1/forms", data=data, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, data
        [error] = response.json["errors"]["non_field_errors"]
        assert message in error, data
    body = b'{"name": "x"}' + b" " * (1024 * 1024)
    response = api.post("/api/v1/forms", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "error" in response.json


def test_ingest_url_uses_base_url_when_set(make_app, tokens):
    app = make_app(BASE_URL="https://hooks.example.org/")
    client = app.test_client()
    headers = {"Authorization": f"Token {tokens['editor']}"}
    form = client.post("/api/v1/forms", json={"name": "S"}, headers=headers).json
    assert form["ingest_url"] == (
        f"https://hooks.example.org/api/v1/forms/{form['uid']}/submissions"
    )
    for _ in range(2):
        client.post("/api/v1/forms", json={"name": "S"}, headers=headers)
    page = client.get("/api/v1/forms?limit=1", headers=headers).json
    assert page["next"] == "https://hooks.example.org/api/v1/forms?limit=1&start=1"


def test_pagination(api):
    for n in range(5):
        assert api.post("/api/v1/forms", json={"name": f"Form {n}"}).status_code == 201
    page = api.get("/api/v1/forms?limit=2").json
    assert page["count"] == 5
    assert [f["name"] for f in page["results"]] == ["Form 4", "Form 3"]  # newest first
    assert page["previous"] is None
    assert page["next"] == "http://localhost/api/v1/forms?limit=2&start=2"
    page = api.get(page["next"].removeprefix("http://localhost")).json
    assert [f["name"] for f in page["results"]] == ["Form 2", "Form 1"]
    assert page["previous"] == "http://localhost/api/v1/forms?limit=2&start=0"
    last = api.get("/api/v1/forms?limit=2&start=4").json
    assert [f["name"] for f in last["results"]] == ["Form 0"] and last["next"] is None
    assert len(api.get("/api/v1/forms?limit=5000").json["results"]) == 5  # capped at 1000
    assert api.get("/api/v1/forms?start=50").json["results"] == []
    for query, field in [("limit=0", "limit"), ("limit=x", "limit"), ("start=-1", "start")]:
        response = api.get(f"/api/v1/forms?{query}")
        assert response.status_code == 400 and field in response.json["errors"], query


def test_list_counts_hooks_and_submissions(api, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    make.hook(form_uid, active=False)
    ingest(client, form_uid, token, {"q": 1})
    make.form("Empty")
    forms = {f["name"]: f for f in api.get("/api/v1/forms").json["results"]}
    assert (
        forms["Household survey"]["hook_count"],
        forms["Household survey"]["submission_count"],
    ) == (2, 1)
    assert (forms["Empty"]["hook_count"], forms["Empty"]["submission_count"]) == (0, 0)


def test_delete_removes_hooks_submissions_and_logs(app, api, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    other_uid, other_token = make.form("Other")
    make.hook(other_uid)
    ingest(client, form_uid, token, {"q": 1})
    ingest(client, other_uid, other_token, {"q": 2})
    assert api.delete(f"/api/v1/forms/{form_uid}").status_code == 204
    with app.app_context():
        counts = [
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Hook, Submission, DeliveryLog)
        ]
    assert counts == [1, 1, 1]  # the other form's rows are untouched


def test_submissions_newest_first_with_current_data(api, client, make):
    form_uid, token = make.form()
    ingest(client, form_uid, token, {"meta": {"instanceID": "uuid:a"}, "q": 1})
    ingest(client, form_uid, token, {"meta": {"instanceID": "uuid:b"}, "q": 2})
    ingest(client, form_uid, token, {"meta": {"instanceID": "uuid:a"}, "q": 3})  # an edit
    page = api.get(f"/api/v1/forms/{form_uid}/submissions").json
    assert page["count"] == 2
    assert [s["instance_id"] for s in page["results"]] == ["uuid:b", "uuid:a"]
    edited = page["results"][1]
    assert edited["data"]["q"] == 3 and edited["edit_count"] == 1
    assert edited["source_format"] == "json" and edited["content_type"] == "application/json"
    page = api.get(f"/api/v1/forms/{form_uid}/submissions?limit=1").json
    assert page["next"].endswith(f"/api/v1/forms/{form_uid}/submissions?limit=1&start=1")
