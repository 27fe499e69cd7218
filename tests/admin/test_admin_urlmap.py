"""Walk the app's URL map: every admin page needs a login, every POST a CSRF
token, and a viewer can change nothing. New routes are covered automatically."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.admin.admin_support import Browser, add_logs, csrf_from
from webapp.extensions import db
from webapp.models import ApiToken, BulkSend, DeliveryLog, Form, Hook, Submission, User
from webapp.models.base import utcnow

ADMIN_BLUEPRINTS = {
    "auth",
    "dashboard",
    "forms",
    "submissions",
    "hooks",
    "bulk",
    "logs",
    "users",
    "profile",
}
PUBLIC = {"auth.login"}
# What a viewer may POST: their own session, language and profile.
VIEWER_MAY_POST = {"auth.login", "auth.logout", "auth.set_language", "profile.index"}

CONTRACT = {
    "/login",
    "/logout",
    "/language",
    "/",
    "/forms",
    "/forms/new",
    "/forms/<form_uid>",
    "/forms/<form_uid>/edit",
    "/forms/<form_uid>/delete",
    "/forms/<form_uid>/token",
    "/forms/<form_uid>/submissions",
    "/forms/<form_uid>/submissions/<int:submission_id>",
    "/forms/<form_uid>/hooks",
    "/forms/<form_uid>/hooks/new",
    "/forms/<form_uid>/hooks/<hook_uid>",
    "/forms/<form_uid>/hooks/<hook_uid>/toggle",
    "/forms/<form_uid>/hooks/<hook_uid>/delete",
    "/forms/<form_uid>/hooks/<hook_uid>/test",
    "/forms/<form_uid>/hooks/<hook_uid>/bulk",
    "/forms/<form_uid>/hooks/<hook_uid>/bulk/backfill",
    "/forms/<form_uid>/hooks/<hook_uid>/bulk/replay",
    "/forms/<form_uid>/hooks/<hook_uid>/bulk/<bulk_uid>/cancel",
    "/forms/<form_uid>/hooks/<hook_uid>/bulk/<bulk_uid>/progress",
    "/forms/<form_uid>/hooks/<hook_uid>/logs",
    "/forms/<form_uid>/hooks/<hook_uid>/logs/retry",
    "/forms/<form_uid>/hooks/<hook_uid>/logs/<log_uid>",
    "/forms/<form_uid>/hooks/<hook_uid>/logs/<log_uid>/retry",
    "/users",
    "/users/new",
    "/users/<int:user_id>",
    "/profile",
}


def admin_rules(app, method: str):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in ADMIN_BLUEPRINTS and method in rule.methods:
            yield rule


@pytest.fixture
def rows(app, make):
    """One of everything, and the URL values that name them."""
    form_uid, _token = make.form(owner_email="owner@example.org")
    hook_uid = make.hook(form_uid)
    [log_uid] = add_logs(app, hook_uid, 1, status="failed")
    with app.app_context():
        submission_id = db.session.scalar(select(Submission.id))
        user_id = db.session.scalar(select(User.id).where(User.email == "owner@example.org"))
        bulk = BulkSend(
            hook_id=db.session.scalar(select(Hook.id)), kind="replay", until=utcnow(), total=1
        )
        db.session.add(bulk)
        db.session.commit()
        bulk_uid = bulk.uid
    return {
        "form_uid": form_uid,
        "hook_uid": hook_uid,
        "log_uid": log_uid,
        "bulk_uid": bulk_uid,
        "submission_id": submission_id,
        "user_id": user_id,
    }


def url(app, rule, values) -> str:
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})


def snapshot(app) -> dict[str, int]:
    """Row counts and hook states: proof that nothing changed."""
    with app.app_context():
        counts = {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Form, Hook, Submission, DeliveryLog, User, ApiToken, BulkSend)
        }
        counts["bulk_states"] = hash(tuple(db.session.scalars(select(BulkSend.state))))
        counts["active_hooks"] = db.session.scalar(
            select(func.count()).select_from(Hook).where(Hook.active.is_(True))
        )
        counts["failed"] = db.session.scalar(
            select(func.count()).select_from(DeliveryLog).where(DeliveryLog.status == "failed")
        )
        counts["roles"] = hash(tuple(db.session.scalars(select(User.role).order_by(User.id))))
        counts["tokens"] = hash(tuple(db.session.scalars(select(Form.ingest_token_hash))))
    return counts


def test_the_url_map_is_the_contract(app):
    paths = {rule.rule for rule in app.url_map.iter_rules()}
    assert paths >= CONTRACT, sorted(CONTRACT - paths)
    admin_paths = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in ADMIN_BLUEPRINTS
    }
    assert admin_paths == CONTRACT


def test_every_admin_page_redirects_to_login_when_logged_out(app, client, rows):
    checked = 0
    for rule in admin_rules(app, "GET"):
        if rule.endpoint in PUBLIC:
            continue
        target = url(app, rule, rows)
        response = client.get(target)
        assert response.status_code == 302, (rule.rule, response.status_code)
        assert response.headers["Location"].startswith("/login?next="), rule.rule
        checked += 1
    assert checked >= 15


def test_every_post_redirects_to_login_when_logged_out(app, client, rows):
    token = csrf_from(client.get("/login").text)
    before = snapshot(app)
    for rule in admin_rules(app, "POST"):
        if rule.endpoint in VIEWER_MAY_POST:
            continue
        response = client.post(url(app, rule, rows), data={"csrf_token": token})
        assert response.status_code == 302, rule.rule
        assert response.headers["Location"].startswith("/login"), rule.rule
    assert snapshot(app) == before


def test_every_post_without_a_csrf_token_is_refused(app, as_role, rows):
    admin = as_role("admin")
    before = snapshot(app)
    checked = 0
    for rule in admin_rules(app, "POST"):
        response = admin.post(url(app, rule, rows), {"name": "x"}, csrf=False)
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert "This form has expired" in response.text
        checked += 1
    assert checked >= 15
    assert snapshot(app) == before
    # Still logged in: the refused logout did nothing.
    assert admin.get("/").status_code == 200


def test_a_viewer_cannot_change_anything(app, as_role, rows):
    viewer = as_role("viewer")
    before = snapshot(app)
    refused = 0
    for rule in admin_rules(app, "POST"):
        if rule.endpoint in VIEWER_MAY_POST:
            continue
        response = viewer.post(url(app, rule, rows), {"name": "x", "role": "admin"})
        assert response.status_code == 403, (rule.rule, response.status_code)
        assert "You cannot do this" in response.text
        refused += 1
    assert refused >= 12
    assert snapshot(app) == before


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_admins_see_the_user_pages(app, as_role, rows, role):
    browser: Browser = as_role(role)
    for rule in admin_rules(app, "GET"):
        if rule.endpoint.startswith("users."):
            assert browser.get(url(app, rule, rows)).status_code == 403, rule.rule
    assert "/users" not in browser.get("/").text


WRITE_PAGES = {"forms.new", "forms.edit", "forms.delete", "hooks.new", "hooks.delete"}


def test_a_viewer_sees_no_write_buttons(app, as_role, rows):
    viewer = as_role("viewer")
    for rule in admin_rules(app, "GET"):
        if rule.endpoint.startswith("users.") or rule.endpoint in PUBLIC:
            continue
        response = viewer.get(url(app, rule, rows))
        if rule.endpoint in WRITE_PAGES:
            assert response.status_code == 403, rule.rule
            continue
        assert response.status_code == 200, rule.rule
        page = response.text
        posts = re.findall(r'<form method="post"(?: action="([^"]*)")?', page)
        allowed = {"/logout", "/language"} | ({""} if rule.endpoint == "profile.index" else set())
        assert set(posts) <= allowed, (rule.rule, posts)
        for suffix in ("/edit", "/new", "/delete"):
            assert f'{suffix}"' not in page, (rule.rule, suffix)
