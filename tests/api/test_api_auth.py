"""API auth: `Authorization: Token ...` only, roles, and the token's last use."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import ApiToken, DeliveryLog, Form, Hook, User
from webapp.models.base import utcnow


def test_missing_or_wrong_token_is_401(client, tokens):
    for authorization in (
        None,
        "",
        "Token",
        "Token ",
        "Bearer fht_x",
        "Basic YTpi",
        "Token fht_not-a-real-token",
        f"Bearer {tokens['editor']}",
    ):
        headers = {} if authorization is None else {"Authorization": authorization}
        for method in ("GET", "POST"):
            response = client.open("/api/v1/forms", method=method, headers=headers)
            assert response.status_code == 401, (authorization, method)
            assert response.headers["WWW-Authenticate"].startswith("Token")
            assert set(response.json) == {"error"} and response.json["error"]


def test_the_scheme_is_case_insensitive(client, tokens):
    response = client.get("/api/v1/forms", headers={"Authorization": f"token {tokens['viewer']}"})
    assert response.status_code == 200


def test_the_session_cookie_is_never_accepted(app, client, tokens):
    with app.app_context():
        user_id = User.by_email("alice@example.org").id
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True
    assert client.get("/api/v1/forms").status_code == 401
    assert client.post("/api/v1/forms", json={"name": "x"}).status_code == 401


def test_a_deactivated_users_token_stops_working(app, api):
    assert api.get("/api/v1/forms").status_code == 200
    with app.app_context():
        db.session.execute(update(User).values(is_active_user=False))
        db.session.commit()
    assert api.get("/api/v1/forms").status_code == 401


def _rows(app) -> list[int]:
    with app.app_context():
        return [
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Form, Hook, DeliveryLog)
        ]


def test_viewer_reads_but_every_write_is_403(app, client, api, make):
    form_uid, ingest_token = make.form()
    hook_uid = make.hook(form_uid)
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        json={"q": 1},
        headers={"Authorization": f"Bearer {ingest_token}"},
    )
    assert response.status_code == 201
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(status="failed", next_retry_at=None))
        db.session.commit()
        log_uid = db.session.scalar(select(DeliveryLog.uid))
    viewer = api.as_role("viewer")
    form_path = f"/api/v1/forms/{form_uid}"
    hook_path = f"{form_path}/hooks/{hook_uid}"
    for path in (
        "/api/v1/forms",
        form_path,
        f"{form_path}/submissions",
        f"{form_path}/hooks",
        hook_path,
        f"{hook_path}/logs",
        f"{hook_path}/logs/{log_uid}",
    ):
        assert viewer.get(path).status_code == 200, path
    # The ingest token allows posting: viewers do not get it.
    assert viewer.get(form_path).json["ingest_token"] is None
    assert api.get(form_path).json["ingest_token"] == ingest_token
    before = _rows(app)
    writes = [
        ("POST", "/api/v1/forms", {"name": "New"}),
        ("PATCH", form_path, {"name": "Renamed"}),
        ("DELETE", form_path, None),
        ("POST", f"{form_path}/hooks", {"name": "X", "endpoint": "https://example.org/h"}),
        ("PATCH", hook_path, {"active": False}),
        ("DELETE", hook_path, None),
        ("POST", f"{hook_path}/retry", None),
        ("POST", f"{hook_path}/logs/{log_uid}/retry", None),
    ]
    for method, path, body in writes:
        response = viewer.open(method, path, json=body)
        assert response.status_code == 403, (method, path)
        assert "viewer" in response.json["error"]
    assert _rows(app) == before
    with app.app_context():
        assert db.session.scalar(select(DeliveryLog.status)) == "failed"
        assert db.session.scalar(select(Hook.active)) is True
    # An admin and an editor may write.
    assert api.as_role("admin").post("/api/v1/forms", json={"name": "A"}).status_code == 201
    assert api.post("/api/v1/forms", json={"name": "E"}).status_code == 201


def test_last_used_at_is_written_at_most_once_a_minute(app, api):
    def last_used():
        with app.app_context():
            return db.session.scalar(
                select(ApiToken.last_used_at).join(User).where(User.email == "alice@example.org")
            )

    assert last_used() is None
    api.get("/api/v1/forms")
    first = last_used()
    assert first is not None and utcnow() - first < timedelta(seconds=30)
    api.get("/api/v1/forms")
    assert last_used() == first
    with app.app_context():
        db.session.execute(update(ApiToken).values(last_used_at=first - timedelta(minutes=2)))
        db.session.commit()
    api.get("/api/v1/forms")
    assert last_used() > first


def test_unknown_objects_are_404_json(api, make):
    form_uid, _ = make.form()
    for path in (
        "/api/v1/forms/nope",
        f"/api/v1/forms/{form_uid}/hooks/nope",
        f"/api/v1/forms/{form_uid}/hooks/nope/logs",
        "/api/v1/forms/nope/submissions",
    ):
        response = api.get(path)
        assert response.status_code == 404 and "error" in response.json, path
