"""The admin actions: "send a test email" and "send the report now"."""

from __future__ import annotations

import re

import pytest

from tests.helpers import free_port
from tests.reports.reports_support import PASSWORD


def csrf_token(client, page: str = "/login") -> str:
    """The CSRF token of the first form on `page`, as a browser would post it."""
    html = client.get(page).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def log_in(client, email: str) -> str:
    """Log in through the login form; returns a CSRF token of the dashboard (new session)."""
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_token(client, "/")


def flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


@pytest.fixture
def admin(failures):
    failures.user("root@example.org", role="admin")
    return "root@example.org"


def test_admin_sends_a_test_email_to_themselves(app, client, smtp, admin):
    token = log_in(client, admin)
    response = client.post("/admin/reports/test-email", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/"
    [received] = smtp.messages
    assert received.rcpt_tos == [admin] and received.subject == "Formhooks: test email"
    assert "This is a test email from Formhooks." in received.text
    assert "This is a test email from Formhooks." in received.html
    assert flashes(client)[-1] == ("success", f"A test email was sent to {admin}.")


def test_admin_sends_the_report_now(app, client, smtp, failures, admin):
    failures.user("alice@example.org")
    hook = failures.hook(failures.form("Survey", "alice@example.org"), "CRM")
    failures.failed(hook, "uuid:1")
    token = log_in(client, admin)
    response = client.post("/admin/reports/send-now", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/"
    assert [m.rcpt_tos for m in smtp.messages] == [["alice@example.org"]]
    assert flashes(client)[-1] == (
        "success",
        "Sent 1 report email (1 failed delivery reported).",
    )
    client.post("/admin/reports/send-now", data={"csrf_token": token})
    assert flashes(client)[-1] == (
        "success",
        "No new failed deliveries to report; no email sent.",
    )
    assert len(smtp.messages) == 1


def test_the_smtp_error_is_shown(make_app, smtp, admin):
    down = make_app(MAIL_PORT=str(free_port()))
    client = down.test_client()
    token = log_in(client, admin)
    client.post("/admin/reports/test-email", data={"csrf_token": token})
    category, message = flashes(client)[-1]
    assert category == "error" and message.startswith("The test email could not be sent: ")
    assert "refused" in message.lower()


def test_without_mail_settings_the_admin_is_told(make_app, smtp, admin):
    unconfigured = make_app(MAIL_SERVER="")
    client = unconfigured.test_client()
    token = log_in(client, admin)
    for action in ("test-email", "send-now"):
        response = client.post(f"/admin/reports/{action}", data={"csrf_token": token})
        assert response.status_code == 302
        category, message = flashes(client)[-1]
        assert category == "error" and message.startswith("Email is not configured")
    assert smtp.messages == []


@pytest.mark.parametrize("action", ["test-email", "send-now"])
def test_editors_are_refused(app, client, smtp, failures, action):
    failures.user("ed@example.org", role="editor")
    token = log_in(client, "ed@example.org")
    response = client.post(f"/admin/reports/{action}", data={"csrf_token": token})
    assert response.status_code == 403
    assert smtp.messages == []


@pytest.mark.parametrize("action", ["test-email", "send-now"])
def test_logged_out_users_go_to_the_login_page(app, client, smtp, action):
    token = csrf_token(client)
    response = client.post(f"/admin/reports/{action}", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.location.startswith("/login")
    assert smtp.messages == []


@pytest.mark.parametrize("action", ["test-email", "send-now"])
def test_a_post_without_csrf_token_is_refused(app, client, smtp, admin, action):
    assert app.config.get("WTF_CSRF_ENABLED", True)  # TESTING does not turn CSRF off
    log_in(client, admin)
    response = client.post(f"/admin/reports/{action}")
    assert response.status_code == 400
    assert smtp.messages == []
