"""Logging in and out, throttling, session expiry, security headers, error pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from tests.admin.admin_support import PASSWORD, Browser, csrf_from
from webapp.admin.auth import LOCK_DURATION, MAX_FAILED_LOGINS
from webapp.admin.security import SESSION_IDLE_TIMEOUT
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_log_in_and_out(app, client, make):
    make.user("alice@example.org", role="editor")
    browser = Browser(client)
    assert client.get("/").headers["Location"] == "/login?next=%2F"
    response = browser.login("Alice@Example.org ")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    page = client.get("/")
    assert "Welcome, alice@example.org." in page.text
    with app.app_context():
        assert User.by_email("alice@example.org").last_login is not None
    response = browser.post("/logout", {"csrf_token": csrf_from(page.text)})
    assert response.headers["Location"] == "/login"
    assert "You are logged out." in client.get("/login").text
    assert client.get("/").status_code == 302


def test_logout_is_post_only(editor):
    assert editor.get("/logout").status_code == 405
    assert editor.get("/").status_code == 200


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(client, make):
    make.user("alice@example.org")
    for target, expected in [
        ("/forms", "/forms"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
    ]:
        browser = Browser(client)
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login?next=" + target,
            data={"email": "alice@example.org", "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected, target
        browser.post("/logout", {"csrf_token": csrf_from(client.get("/").text)})


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make):
    make.user("alice@example.org")
    for email, password in [("alice@example.org", "nope"), ("bob@example.org", PASSWORD)]:
        response = Browser(client).login(email, password)
        assert response.status_code == 400
        assert "Wrong email or password." in response.text


def test_a_deactivated_user_cannot_log_in(app, client, make):
    make.user("alice@example.org")
    with app.app_context():
        User.by_email("alice@example.org").is_active_user = False
        db.session.commit()
    assert Browser(client).login("alice@example.org").status_code == 400


def test_login_is_throttled_after_repeated_failures(app, client, make):
    make.user("alice@example.org")
    browser = Browser(client)
    for _ in range(MAX_FAILED_LOGINS - 1):
        assert browser.login("alice@example.org", "wrong").status_code == 400
    response = browser.login("alice@example.org", "wrong")
    assert response.status_code == 429 and "locked for 15 minutes" in response.text
    # Even the right password is refused while locked.
    response = browser.login("alice@example.org", PASSWORD)
    assert response.status_code == 429
    with app.app_context():
        user = User.by_email("alice@example.org")
        assert user.locked_until > utcnow() + LOCK_DURATION - timedelta(minutes=1)
        user.locked_until = utcnow() - timedelta(seconds=1)  # time passes
        db.session.commit()
    assert browser.login("alice@example.org", PASSWORD).status_code == 302
    with app.app_context():
        assert User.by_email("alice@example.org").failed_logins == 0


def test_sessions_expire_after_the_maximum_age(client, editor):
    assert editor.get("/").status_code == 200
    with editor.client.session_transaction() as session:
        session["login_at"] = int((utcnow() - timedelta(hours=25)).timestamp())
    assert editor.get("/").headers["Location"].startswith("/login")


def test_sessions_expire_when_idle(app, editor):
    assert timedelta(hours=12) >= SESSION_IDLE_TIMEOUT
    assert app.permanent_session_lifetime == SESSION_IDLE_TIMEOUT
    set_cookie = editor.get("/").headers.get("Set-Cookie", "")
    assert "Expires=" in set_cookie and "HttpOnly" in set_cookie
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(seconds=-1)  # the cookie is too old
    assert editor.get("/").headers["Location"].startswith("/login")


def test_a_password_change_logs_out_other_sessions(app, make):
    make.user("alice@example.org")
    first, second = Browser(app.test_client()), Browser(app.test_client())
    first.login("alice@example.org")
    second.login("alice@example.org")
    with app.app_context():
        user = User.by_email("alice@example.org")
        user.set_password("a new password")
        db.session.commit()
    assert first.get("/").status_code == 302
    assert second.get("/").status_code == 302


def test_language_switch_in_the_session_then_on_the_user(app, client, make):
    make.user("alice@example.org")
    token = csrf_from(client.get("/login").text)
    client.post("/language", data={"language": "fr", "csrf_token": token, "next": "/login"})
    page = client.get("/login")
    assert '<html lang="fr">' in page.text and "Se connecter" in page.text
    assert "Le panneau est maintenant en français." in page.text
    Browser(client).login("alice@example.org")
    with app.app_context():
        assert User.by_email("alice@example.org").language == "fr"  # remembered at login
    page = client.get("/")
    assert "Tableau de bord" in page.text
    client.post("/language", data={"language": "en", "csrf_token": csrf_from(page.text)})
    with app.app_context():
        assert User.by_email("alice@example.org").language == "en"
    assert "Dashboard" in client.get("/").text


def test_the_browser_language_is_used_by_default(client):
    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in page.text


def test_security_headers_on_pages_and_api(app, client, editor):
    for response in (client.get("/login"), editor.get("/"), client.get("/healthz")):
        headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert editor.get("/").headers["Cache-Control"] == "no-store"


def test_templates_have_no_inline_script_handler_or_style():
    """The CSP forbids them; this catches them before a browser does."""
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
    style = re.compile(r"<[^>]+\sstyle\s*=|<style", re.I)
    checked = 0
    for path in TEMPLATES.rglob("*.html"):
        if "email" in path.parts:
            continue  # emails are not pages: their inline styles are for mail clients
        text = path.read_text()
        assert not inline_script.search(text), path
        assert not handler.search(text), path
        assert not style.search(text), path
        checked += 1
    assert checked >= 15


def test_error_pages(app, client, editor):
    page = editor.get("/forms/nope")
    assert page.status_code == 404 and "Page not found" in page.text
    assert "<html" in page.text
    api = client.get("/api/v1/does-not-exist")
    assert api.status_code == 404 and api.is_json and "error" in api.json
    assert client.get("/no/such/page").status_code == 404


def test_the_500_page(make_app):
    other = make_app()
    other.config["TESTING"] = False
    other.config["PROPAGATE_EXCEPTIONS"] = False

    @other.get("/boom")
    def boom():
        raise RuntimeError("boom")

    response = other.test_client().get("/boom")
    assert response.status_code == 500 and "Something went wrong" in response.text


def test_failed_login_counter_counts_in_the_database(app, client, make):
    make.user("alice@example.org")
    Browser(client).login("alice@example.org", "wrong")
    Browser(app.test_client()).login("alice@example.org", "wrong")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "alice@example.org"))
        assert user.failed_logins == 2
