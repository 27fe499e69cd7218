"""Logging in and out, throttling, session expiry, security headers, error pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from tests.admin.admin_support import PASSWORD, Browser, csrf_from
from webapp.admin.security import SESSION_IDLE_TIMEOUT
from webapp.admin.throttle import (
    ADDRESS_LIMIT,
    LOCK_DURATION,
    PAIR_LIMIT,
    WINDOW,
    record_failure,
)
from webapp.extensions import db
from webapp.models import ApiToken, LoginThrottle, User
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


def _login_from(app, address: str, email: str, password: str = PASSWORD):
    """Log in from a given client address (a new browser each time)."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Browser(client).login(email, password)


def _time_passes(app, delta: timedelta) -> None:
    """Move every throttle's clock back by `delta` (as if that much time passed)."""
    with app.app_context():
        for row in db.session.scalars(select(LoginThrottle)):
            row.window_start -= delta
            if row.blocked_until is not None:
                row.blocked_until -= delta
        db.session.commit()


def test_a_stranger_cannot_lock_the_owner_out(app, make):
    make.user("alice@example.org")
    attacker = "203.0.113.7"
    for _ in range(PAIR_LIMIT - 1):
        assert _login_from(app, attacker, "alice@example.org", "wrong").status_code == 400
    response = _login_from(app, attacker, "alice@example.org", "wrong")
    assert response.status_code == 429 and "Too many failed attempts" in response.text
    # From the attacker's address even the right password is refused for a while...
    assert _login_from(app, attacker, "alice@example.org").status_code == 429
    # ...but the owner, from their own address, logs in.
    assert _login_from(app, "198.51.100.2", "alice@example.org").status_code == 302
    _time_passes(app, LOCK_DURATION + timedelta(seconds=1))
    assert _login_from(app, attacker, "alice@example.org").status_code == 302


def test_known_and_unknown_emails_are_throttled_alike(app, make):
    make.user("alice@example.org")
    answers = {}
    for email in ("alice@example.org", "nobody@example.org"):
        answers[email] = [
            (r.status_code, _flash(r.text))
            for r in (
                _login_from(app, "203.0.113.7", email, "wrong") for _ in range(PAIR_LIMIT + 1)
            )
        ]
    assert answers["alice@example.org"] == answers["nobody@example.org"]
    assert [status for status, _ in answers["nobody@example.org"]] == [400] * (PAIR_LIMIT - 1) + [
        429,
        429,
    ]


def _flash(html: str) -> str:
    match = re.search(r'class="flash[^"]*"[^>]*>(.*?)<', html, re.S)
    return match.group(1).strip() if match else ""


def test_one_address_trying_many_accounts_is_throttled(app, make):
    make.user("alice@example.org")
    assert _login_from(app, "203.0.113.9", "user0@example.org", "wrong").status_code == 400
    with app.app_context():  # the same failures, counted without hashing 50 passwords
        for i in range(1, ADDRESS_LIMIT - 1):
            record_failure("203.0.113.9", f"user{i}@example.org", utcnow())
    assert _login_from(app, "203.0.113.9", "x@example.org", "wrong").status_code == 429
    assert _login_from(app, "203.0.113.9", "alice@example.org").status_code == 429
    assert _login_from(app, "198.51.100.2", "alice@example.org").status_code == 302
    _time_passes(app, LOCK_DURATION + timedelta(seconds=1))
    assert _login_from(app, "203.0.113.9", "alice@example.org").status_code == 302


def test_failures_spread_over_more_than_the_window_do_not_block(app, make):
    make.user("alice@example.org")
    for _ in range(PAIR_LIMIT - 1):
        _login_from(app, "203.0.113.7", "alice@example.org", "wrong")
    _time_passes(app, WINDOW + timedelta(seconds=1))
    assert _login_from(app, "203.0.113.7", "alice@example.org", "wrong").status_code == 400


def test_a_successful_login_clears_the_failures_of_its_address_and_account(app, make):
    make.user("alice@example.org")
    for _ in range(PAIR_LIMIT - 1):
        _login_from(app, "203.0.113.7", "alice@example.org", "wrong")
    assert _login_from(app, "203.0.113.7", "alice@example.org").status_code == 302
    for _ in range(PAIR_LIMIT - 1):
        assert _login_from(app, "203.0.113.7", "alice@example.org", "wrong").status_code == 400


def test_unknown_and_known_emails_cost_the_same_hashing(app, make, monkeypatch):
    """Same work for both: a password hash is checked whether the email exists or not."""
    import webapp.admin.auth as auth

    make.user("alice@example.org")
    make.user("inactive@example.org")
    with app.app_context():
        User.by_email("inactive@example.org").is_active_user = False
        db.session.commit()
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda h, p: checked.append(1) or real(h, p))
    for email in ("alice@example.org", "nobody@example.org", "inactive@example.org"):
        checked.clear()
        assert _login_from(app, "203.0.113.7", email, "wrong").status_code == 400
        assert checked == [1], email


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


def test_failed_logins_count_in_the_database(app, client, make):
    make.user("alice@example.org")
    Browser(client).login("alice@example.org", "wrong")
    Browser(app.test_client()).login("Alice@example.org", "wrong")
    with app.app_context():
        rows = {(r.account, r.failures) for r in db.session.scalars(select(LoginThrottle))}
    assert rows == {("alice@example.org", 2), ("", 2)}


def test_a_replayed_cookie_after_logout_is_refused(app, client, make):
    make.user("alice@example.org")
    browser = Browser(client)
    browser.login("alice@example.org")
    page = client.get("/profile")
    token = csrf_from(page.text)
    stolen = client.get_cookie("session").value
    browser.post("/logout", {"csrf_token": token})
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    response = thief.post(
        "/profile", data={"action": "token_create", "token-token_name": "x", "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_changing_ones_password_ends_the_other_sessions_not_this_one(app, make):
    make.user("alice@example.org")
    here, there = Browser(app.test_client()), Browser(app.test_client())
    here.login("alice@example.org")
    there.login("alice@example.org")
    old_cookie = here.client.get_cookie("session").value
    response = here.post(
        "/profile",
        {
            "action": "password",
            "pw-current_password": PASSWORD,
            "pw-new_password": "a new password 1",
            "pw-confirm": "a new password 1",
        },
    )
    assert response.status_code == 302, response.text
    assert here.get("/").status_code == 200
    assert there.get("/").headers["Location"].startswith("/login")
    replay = app.test_client()
    replay.set_cookie("session", old_cookie)  # this browser's cookie before the change
    assert replay.get("/").status_code == 302


def test_next_with_a_line_break_is_ignored(client, make):
    make.user("alice@example.org")
    for target in ("/forms%0d%0aSet-Cookie:%20x=1", "/forms%0aX: y", "/forms%09"):
        token = csrf_from(client.get("/login").text)
        response = client.post(
            "/login?next=" + target,
            data={"email": "alice@example.org", "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302, target
        assert response.headers["Location"] == "/", target
        Browser(client).post("/logout", {"csrf_token": csrf_from(client.get("/").text)})
