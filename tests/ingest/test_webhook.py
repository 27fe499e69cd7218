"""The webhook URL (docs/webhook.md): tokens, body types, identity, edits, errors."""

from __future__ import annotations

import base64
import io
import json

import pytest
from sqlalchemy import func, select

from tests.helpers import fixture_bytes
from webapp.extensions import db
from webapp.models import DeliveryLog, Submission

SAMPLES = {
    "kobo_flat.json": ("application/json", "uuid:3f0c1b9e-7a52-4d8e-9a61-0c2b7e5d4f18"),
    "nested.json": ("application/json", "uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64"),
    "odk_instance.xml": ("application/xml", "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"),
    "webform.urlencoded": ("application/x-www-form-urlencoded", None),
}


def url(form_uid: str) -> str:
    return f"/api/v1/forms/{form_uid}/submissions"


def auth_variants(token: str):
    basic = base64.b64encode(f"kobo:{token}".encode()).decode()
    return {
        "bearer": ({"Authorization": f"Bearer {token}"}, ""),
        "basic": ({"Authorization": f"Basic {basic}"}, ""),
        "query": ({}, f"?token={token}"),
    }


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Submission)),
            db.session.scalar(select(func.count()).select_from(DeliveryLog)),
        )


@pytest.mark.parametrize("auth", ["bearer", "basic", "query"])
@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_each_sample_with_each_token_form_is_stored_faithfully(app, client, make, sample, auth):
    form_uid, token = make.form()
    make.hook(form_uid, name="CRM")
    make.hook(form_uid, name="Dashboard")
    make.hook(form_uid, name="Off", active=False)
    content_type, instance_id = SAMPLES[sample]
    body = fixture_bytes(sample)
    headers, query = auth_variants(token)[auth]
    response = client.post(
        url(form_uid) + query, data=body, headers={**headers, "Content-Type": content_type}
    )
    assert response.status_code == 201, response.json
    assert response.json["created"] is True
    assert response.json["deliveries"] == 2
    if instance_id:
        assert response.json["instance_id"] == instance_id
    else:
        assert response.json["instance_id"].startswith("uuid:")
    with app.app_context():
        stored = db.session.get(Submission, response.json["id"])
        assert stored.body == body
        assert stored.instance_id == response.json["instance_id"]
        logs = db.session.scalars(
            select(DeliveryLog).where(DeliveryLog.submission_id == stored.id)
        ).all()
        assert sorted(log.hook.name for log in logs) == ["CRM", "Dashboard"]
        assert {log.status for log in logs} == {"pending"}
        if sample == "kobo_flat.json":
            assert stored.data["household/head_name"] == "Aïssatou Diallo"
            assert stored.data["comments"] == "Puits à réparer; <urgent> & à suivre"
        if sample == "odk_instance.xml":
            assert stored.source_format == "xml"
            assert stored.data["household/head_name"] == "Aïssatou Diallo"
            assert stored.data["comments"] == "Puits à réparer; <urgent> & à suivre"
        if sample == "webform.urlencoded":
            assert stored.data["needs"] == ["shelter", "water"]
            assert stored.data["message"] == "Besoin d'aide à Zahlé"
            assert stored.data["email"] == "nadia@example.org"


def test_repost_is_an_edit_that_sends_nothing(app, client, make):
    form_uid, token = make.form()
    make.hook(form_uid)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    first = json.loads(fixture_bytes("kobo_flat.json"))
    assert client.post(url(form_uid), json=first, headers=headers).status_code == 201
    edited = {**first, "comments": "corrigé"}
    response = client.post(url(form_uid), data=json.dumps(edited), headers=headers)
    assert response.status_code == 200
    assert response.json["created"] is False
    assert response.json["deliveries"] == 0
    assert counts(app) == (1, 1)
    with app.app_context():
        stored = db.session.scalar(select(Submission))
        assert stored.edit_count == 1
        assert stored.current_data["comments"] == "corrigé"
        assert stored.data["comments"] == first["comments"]  # what deliveries send


def test_instance_id_rules(app, client, make):
    form_uid, token = make.form()
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post(url(form_uid), json={"_uuid": "abc"}, headers=headers)
    assert r.json["instance_id"] == "uuid:abc"
    r = client.post(url(form_uid), json={"a": 1}, headers={**headers, "Idempotency-Key": "k-1"})
    assert r.json["instance_id"] == "k-1"
    r = client.post(url(form_uid), json={"a": 2}, headers={**headers, "Idempotency-Key": "k-1"})
    assert (r.status_code, r.json["created"]) == (200, False)
    r1 = client.post(url(form_uid), json={"a": 1}, headers=headers)
    r2 = client.post(url(form_uid), json={"a": 1}, headers=headers)
    assert r1.status_code == r2.status_code == 201
    assert r1.json["instance_id"] != r2.json["instance_id"]


def test_openrosa_multipart(app, client, make):
    form_uid, token = make.form()
    body = fixture_bytes("odk_instance.xml")
    response = client.post(
        url(form_uid),
        headers={"Authorization": f"Bearer {token}"},
        data={
            "xml_submission_file": (io.BytesIO(body), "submission.xml", "text/xml"),
            "photo.jpg": (io.BytesIO(b"\xff\xd8jpeg"), "photo.jpg", "image/jpeg"),
        },
        content_type="multipart/form-data",
    )
    # A multipart post is answered as OpenRosa (docs/openrosa.md).
    assert response.status_code == 201, response.get_data()
    assert response.headers["X-OpenRosa-Version"] == "1.0"
    assert response.mimetype == "text/xml"
    with app.app_context():
        stored = db.session.scalar(select(Submission))
        assert stored.instance_id == "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"
        assert stored.body == body
        assert stored.content_type == "application/xml"


BAD_REQUESTS = [
    ("malformed json", "application/json", b'{"a": ', 400, "Malformed JSON"),
    ("json array", "application/json", b"[1, 2]", 400, "must be an object"),
    ("json NaN", "application/json", b'{"a": NaN}', 400, "NaN"),
    ("json invalid utf-8", "application/json", b'{"a": "\xff"}', 400, "UTF-8"),
    ("empty json", "application/json", b"", 400, "empty"),
    ("malformed xml", "application/xml", b"<data><a></data>", 400, "Malformed XML"),
    (
        "xml entity",
        "application/xml",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><d>&a;</d>',
        400,
        "Malformed XML",
    ),
    ("urlencoded bad utf-8", "application/x-www-form-urlencoded", b"a=%ff", 400, "UTF-8"),
    (
        "multipart without xml",
        "multipart/form-data; boundary=XX",
        b'--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XX--\r\n',
        400,
        "xml_submission_file",
    ),
    ("unsupported type", "text/plain", b"hello", 415, "Unsupported Content-Type"),
    ("no type", None, b"hello", 415, "Content-Type"),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_bodies_are_refused_and_store_nothing(app, client, make, case):
    _, content_type, body, status, message = case
    form_uid, token = make.form()
    make.hook(form_uid)
    # JSON answers: a multipart post asks for them (docs/openrosa.md).
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    response = client.post(url(form_uid), data=body, headers=headers)
    assert response.status_code == status
    assert message in response.json["error"]
    assert counts(app) == (0, 0)


def test_auth_and_routing_errors_store_nothing(app, client, make):
    form_uid, token = make.form()
    body = fixture_bytes("nested.json")
    json_type = {"Content-Type": "application/json"}
    r = client.post(url(form_uid), data=body, headers=json_type)
    assert r.status_code == 401 and "Missing ingest token" in r.json["error"]
    r = client.post(url(form_uid), data=body, headers={**json_type, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and "Invalid ingest token" in r.json["error"]
    r = client.post(url(form_uid) + "?token=nope", data=body, headers=json_type)
    assert r.status_code == 401
    r = client.post(
        url("aNoSuchForm"), data=body, headers={**json_type, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 404 and r.json == {"error": "No form with uid 'aNoSuchForm'."}
    other_uid, _ = make.form(name="Other")
    r = client.post(
        url(other_uid), data=body, headers={**json_type, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 401
    assert counts(app) == (0, 0)


def test_oversized_body_is_refused_while_reading(app, make, make_app):
    small_app = make_app(MAX_SUBMISSION_BYTES="1000")
    form_uid, token = make.form()
    client = small_app.test_client()
    big = json.dumps({"x": "y" * 2000}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    r = client.post(url(form_uid), data=big, headers=headers)
    assert r.status_code == 413 and "1000 bytes" in r.json["error"]

    # No Content-Length (chunked, as gunicorn passes it): the limit holds while streaming.
    r = client.post(
        url(form_uid),
        input_stream=io.BytesIO(b" " * 2000 + b"{}"),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 413
    ok = client.post(url(form_uid), data=b'{"x": 1}', headers=headers)
    assert ok.status_code == 201
    assert counts(app) == (1, 0)


def test_submission_accepted_while_redis_is_down(app, make, make_app):
    """The body is stored and the log stays due; the sweeper queues it later."""
    down_app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    form_uid, token = make.form()
    make.hook(form_uid)
    r = down_app.test_client().post(
        url(form_uid),
        data=fixture_bytes("nested.json"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 201 and r.json["deliveries"] == 1
    assert counts(app) == (1, 1)


BAD_BODIES = [
    ("application/json", b"{not json"),  # 400
    ("text/plain", b"hello"),  # 415
]


@pytest.mark.parametrize("content_type,body", BAD_BODIES)
def test_form_and_token_errors_come_before_body_errors(app, client, make, content_type, body):
    """Small bodies are parsed before the one-statement store, yet 404 and 401 still win."""
    form_uid, token = make.form()
    headers = {"Content-Type": content_type}
    r = client.post(url("aNoSuchForm"), data=body, headers={**headers, "Authorization": "Bearer x"})
    assert r.status_code == 404
    r = client.post(url(form_uid), data=body, headers={**headers, "Authorization": "Bearer nope"})
    assert r.status_code == 401 and "Invalid ingest token" in r.json["error"]
    r = client.post(url(form_uid), data=body, headers=headers)
    assert r.status_code == 401 and "Missing ingest token" in r.json["error"]
    r = client.post(
        url(form_uid), data=body, headers={**headers, "Authorization": f"Bearer {token}"}
    )
    assert r.status_code in (400, 415)
    assert counts(app) == (0, 0)


def test_a_large_body_is_not_read_before_the_token_is_checked(app, make, make_app):
    """Over 64 KB (or without a length) the form and token are checked first."""
    form_uid, token = make.form()
    client = app.test_client()
    big = json.dumps({"x": "y" * 100_000}).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer nope"}
    r = client.post(url(form_uid), data=big, headers=headers)
    assert r.status_code == 401
    r = client.post(
        url(form_uid),
        input_stream=io.BytesIO(big),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert r.status_code == 401
    headers["Authorization"] = f"Bearer {token}"
    r = client.post(url(form_uid), data=big, headers=headers)
    assert r.status_code == 201
    assert counts(app) == (1, 0)


def test_log_uids_are_distinct_kobo_style_uids(app, client, make):
    form_uid, token = make.form()
    for name in ("A", "B", "C"):
        make.hook(form_uid, name=name)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for number in range(20):
        body = json.dumps({"meta": {"instanceID": f"uuid:{number}"}}).encode()
        assert client.post(url(form_uid), data=body, headers=headers).status_code == 201
    with app.app_context():
        uids = list(db.session.scalars(select(DeliveryLog.uid)))
    assert len(uids) == len(set(uids)) == 60
    for uid in uids:
        assert len(uid) == 22 and uid.startswith("hl") and uid[2:].isalnum() and uid.isascii()


def test_database_unreachable_answers_503_with_retry_after(app, make, make_app, db_backend):
    """Nothing can be stored: say so, and when to come back, instead of a 500."""
    form_uid, token = make.form()
    if db_backend[0] == "postgresql":
        down_url = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    else:
        down_url = "sqlite:////nonexistent-directory/formhooks.db"
    down_app = make_app(DATABASE_URL=down_url)
    client = down_app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    small = fixture_bytes("nested.json")
    big = json.dumps({"x": "y" * 100_000}).encode()
    for body in (small, big):
        r = client.post(url(form_uid), data=body, headers=headers)
        assert r.status_code == 503, r.data
        assert int(r.headers["Retry-After"]) > 0
        assert "database is unavailable" in r.json["error"]
    assert counts(app) == (0, 0)


def test_a_dropped_database_connection_is_replaced_without_an_error(app, client, make, db_backend):
    """After a database restart the pooled connections are dead: the post still succeeds."""
    if db_backend[0] != "postgresql":
        pytest.skip("SQLite has no server connection to lose")
    from sqlalchemy import text

    form_uid, token = make.form()
    make.hook(form_uid)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    first = json.dumps({"meta": {"instanceID": "uuid:1"}}).encode()
    assert client.post(url(form_uid), data=first, headers=headers).status_code == 201
    with app.app_context():
        killed = db.session.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        db.session.commit()
    assert killed >= 1
    second = json.dumps({"meta": {"instanceID": "uuid:2"}}).encode()
    r = client.post(url(form_uid), data=second, headers=headers)
    assert r.status_code == 201 and r.json["deliveries"] == 1
    assert counts(app) == (2, 2)
