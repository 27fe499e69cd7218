"""REST services in the panel: the hook_settings rules shown by the fields,
secrets never shown back, enable/disable, counts, preview and "Send test"."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import event, func, select

from tests.admin.admin_support import Browser, add_logs, post_submission
from tests.helpers import LOOPBACK_HOOKS, run_worker
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


def hook_data(**changes) -> dict:
    data = {
        "name": "CRM",
        "endpoint": "https://crm.example.org/hook",
        "active": "y",
        "export_type": "json",
        "auth_level": "no_auth",
        "username": "",
        "password": "",
        "subset_fields": "",
        "payload_template": "",
        "email_notification": "y",
        "notification_emails": "",
        "action": "save",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def the_hook(app, uid=None) -> SimpleNamespace:
    """The hook's columns, and its secrets decrypted (read inside the app context)."""
    with app.app_context():
        stmt = select(Hook) if uid is None else select(Hook).where(Hook.uid == uid)
        hook = db.session.scalars(stmt).one()
        values = {c.key: getattr(hook, c.key) for c in Hook.__table__.columns}
        return SimpleNamespace(
            **values,
            password=hook.password,
            custom_headers=hook.custom_headers,
            basic_auth=hook.basic_auth,
        )


def field_errors(html: str, field: str) -> str:
    match = re.search(rf'<ul class="errors" id="{field}-error">(.*?)</ul>', html, re.S)
    return match.group(1) if match else ""


def test_create_a_hook_with_every_setting(app, editor, make):
    form_uid, _ = make.form()
    response = editor.post(
        f"/forms/{form_uid}/hooks/new",
        hook_data(
            auth_level="basic_auth",
            username="crm",
            password="s3cret-pass",
            subset_fields="q1\ngroup1/q3\n\n",
            payload_template='{"data": %SUBMISSION%}',
            notification_emails="Ops@Example.org\npartner@example.org",
            **{
                "custom_headers-0-name": "X-Api-Key",
                "custom_headers-0-value": "key-123456",
                "custom_headers-5-name": "",
                "custom_headers-5-value": "",
            },
        ),
    )
    assert response.status_code == 302
    hook = the_hook(app)
    assert response.headers["Location"] == f"/forms/{form_uid}/hooks/{hook.uid}"
    assert (hook.name, hook.endpoint, hook.active) == ("CRM", "https://crm.example.org/hook", True)
    assert hook.subset_fields == ["q1", "group1/q3"]
    assert hook.payload_template == '{"data": %SUBMISSION%}'
    assert hook.basic_auth == ("crm", "s3cret-pass")
    assert hook.custom_headers == {"X-Api-Key": "key-123456"}
    assert hook.notification_emails == ["Ops@example.org", "partner@example.org"]
    page = editor.get(response.headers["Location"]).text
    assert "REST service “CRM” created" in page
    # Secrets are never shown back.
    assert "s3cret-pass" not in page and "key-123456" not in page
    assert "saved: ••••56" in page
    assert "A password is saved" in page


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"name": ""}, "name", "Enter a name."),
        ({"endpoint": "file:///etc/passwd"}, "endpoint", "Only http:// and https://"),
        ({"endpoint": "http://10.0.0.1/x"}, "endpoint", "a private address"),
        ({"payload_template": '{"data": %SUBMISSION%'}, "payload_template", "not valid JSON"),
        (
            {"export_type": "xml", "payload_template": '{"d": %SUBMISSION%}'},
            "payload_template",
            "only be used with the JSON format",
        ),
        ({"subset_fields": "/q1"}, "subset_fields", "must not start or end with"),
        (
            {"auth_level": "basic_auth", "username": "crm"},
            "auth",
            "needs a username and a password",
        ),
        (
            {"custom_headers-0-name": "Bad Header", "custom_headers-0-value": "v"},
            "headers",
            "is not valid",
        ),
        (
            {"custom_headers-0-name": "Host", "custom_headers-0-value": "v"},
            "headers",
            "set by Formhooks",
        ),
        (
            {"custom_headers-0-name": "", "custom_headers-0-value": "orphan"},
            "headers",
            "without its name",
        ),
        ({"notification_emails": "not-an-email"}, "notification_emails", "not-an-email"),
    ],
)
def test_errors_are_shown_next_to_their_field(app, editor, make, changes, field, message):
    form_uid, _ = make.form()
    response = editor.post(f"/forms/{form_uid}/hooks/new", hook_data(**changes))
    assert response.status_code == 400
    assert message in field_errors(response.text, field), response.text
    assert "Nothing was saved" in response.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Hook)) == 0


def test_values_typed_are_kept_after_an_error(editor, make):
    form_uid, _ = make.form()
    response = editor.post(
        f"/forms/{form_uid}/hooks/new",
        hook_data(name="", subset_fields="q1\nq2", password="typed-secret"),
    )
    assert "q1\nq2</textarea>" in response.text
    assert "typed-secret" not in response.text  # a password is never sent back


def test_blank_password_and_header_values_keep_the_saved_ones(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(
        form_uid,
        endpoint="https://crm.example.org/hook",  # the same origin as the new endpoint
        auth_level="basic_auth",
        username="crm",
        password="old-password",
        custom_headers={"X-Api-Key": "old-key", "X-Other": "other"},
    )
    response = editor.post(
        f"/forms/{form_uid}/hooks/{uid}",
        hook_data(
            name="CRM 2",
            endpoint="https://crm.example.org/v2",
            auth_level="basic_auth",
            username="crm",
            **{
                # Renamed, value kept; X-Other removed; one added.
                "custom_headers-0-name": "X-Key",
                "custom_headers-0-value": "",
                "custom_headers-0-original": "X-Api-Key",
                "custom_headers-3-name": "X-New",
                "custom_headers-3-value": "new",
            },
        ),
    )
    assert response.status_code == 302, response.text
    hook = the_hook(app, uid)
    assert hook.name == "CRM 2" and hook.password == "old-password"
    assert hook.custom_headers == {"X-Key": "old-key", "X-New": "new"}


def test_switching_to_no_auth_forgets_the_password(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid, auth_level="basic_auth", username="crm", password="pw-123456")
    editor.post(f"/forms/{form_uid}/hooks/{uid}", hook_data(auth_level="no_auth"))
    assert the_hook(app, uid).password_encrypted is None


def test_hooks_list_counts_in_one_query(app, editor, make):
    form_uid, _ = make.form()
    uids = [make.hook(form_uid, name=f"Hook {i}") for i in range(4)]
    add_logs(app, uids[0], 3, status="success")
    add_logs(app, uids[0], 2, status="failed")
    add_logs(app, uids[1], 1, status="pending")
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = editor.get(f"/forms/{form_uid}/hooks").text
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # One query of the counters kept by the database; the logs are never read.
    counting = [s for s in statements if "hook_status_counts" in s]
    assert len(counting) == 1, counting
    assert "GROUP BY" in counting[0]
    assert not [s for s in statements if "delivery_logs" in s]
    assert "✓</span> 3" in page and "✕</span> 2" in page
    assert page.count('role="switch"') == 4


def test_disable_then_enable_resumes_the_parked_deliveries(app, client, editor, make, endpoint):
    form_uid, token = make.form()
    uid = make.hook(form_uid, endpoint=endpoint.url)
    editor.post(f"/forms/{form_uid}/hooks/{uid}/toggle")
    assert the_hook(app, uid).active is False
    page = editor.get(f"/forms/{form_uid}/hooks").text
    assert "is disabled" in page and 'aria-checked="false"' in page
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == uid))
        hook.active = True
        db.session.commit()
    post_submission(client, form_uid, token)  # a log, then the hook is disabled before sending
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == uid))
        hook.active = False
        db.session.commit()
    run_worker(app)
    with app.app_context():
        assert db.session.scalar(select(DeliveryLog.next_retry_at)) is None  # parked
    response = editor.post(f"/forms/{form_uid}/hooks/{uid}/toggle")
    page = editor.get(response.headers["Location"]).text
    assert "is enabled" in page and "1 waiting deliveries are being sent" in page
    run_worker(app)
    assert len(endpoint.requests) == 1


def test_preview_shows_the_exact_body_for_the_latest_submission(app, client, editor, make):
    form_uid, token = make.form()
    uid = make.hook(form_uid, subset_fields=["q1"], payload_template='{"d": %SUBMISSION%}')
    post_submission(client, form_uid, token, {"q1": "old", "meta": {"instanceID": "uuid:a"}})
    post_submission(client, form_uid, token, {"q1": "new", "q2": "x", "meta": {"instanceID": "b"}})
    page = editor.get(f"/forms/{form_uid}/hooks/{uid}").text
    body = re.search(r'<pre id="preview-body"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert json.loads(body.replace("&#34;", '"')) == {"d": {"q1": "new"}}
    assert "Content-Type: application/json" in page
    # Unsaved settings can be previewed; nothing is saved.
    response = editor.post(
        f"/forms/{form_uid}/hooks/{uid}",
        hook_data(export_type="xml", subset_fields="q2", action="preview"),
    )
    assert response.status_code == 200
    assert "not saved yet" in response.text
    assert "&lt;q2&gt;x&lt;/q2&gt;" in response.text
    assert the_hook(app, uid).export_type == "json"


def test_send_test_posts_once_and_shows_the_answer(app, client, editor, make, endpoint):
    form_uid, token = make.form()
    uid = make.hook(form_uid, endpoint=endpoint.url, custom_headers={"X-Api-Key": "k"})
    endpoint.statuses = [418]
    response = editor.post(f"/forms/{form_uid}/hooks/{uid}/test")
    page = editor.get(response.headers["Location"]).text
    assert "The test failed" in page
    assert "HTTP 418" in page and "answer 1: 418" in page
    [received] = endpoint.requests
    assert received["headers"]["X-Api-Key"] == "k"
    assert received["headers"]["X-Formhooks-Test"] == "true"
    assert received["headers"]["X-Formhooks-Event"] == "submission.created"
    assert received["headers"]["X-Formhooks-Submission"] == "uuid:formhooks-test"
    assert json.loads(received["body"])["formhooks_test"] is True  # no submission yet: a sample
    endpoint.statuses = [200]
    post_submission(client, form_uid, token, {"q1": "real", "meta": {"instanceID": "uuid:x"}})
    with app.app_context():
        logs_before = db.session.scalar(select(func.count()).select_from(DeliveryLog))
    response = editor.post(f"/forms/{form_uid}/hooks/{uid}/test")
    assert "Test sent" in editor.get(response.headers["Location"]).text
    assert json.loads(endpoint.requests[-1]["body"]) == {
        "q1": "real",
        "meta": {"instanceID": "uuid:x"},
    }
    assert endpoint.requests[-1]["headers"]["X-Formhooks-Event"] == "submission.created"
    assert endpoint.requests[-1]["headers"]["X-Formhooks-Submission"] == "uuid:x"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(DeliveryLog)) == logs_before
    # The latest version is an edit: the test says so, as its delivery would.
    edit = {"q1": "edited", "meta": {"instanceID": "uuid:y", "deprecatedID": "uuid:x"}}
    post_submission(client, form_uid, token, edit)
    editor.post(f"/forms/{form_uid}/hooks/{uid}/test")
    assert json.loads(endpoint.requests[-1]["body"]) == edit
    assert endpoint.requests[-1]["headers"]["X-Formhooks-Event"] == "submission.edited"
    assert endpoint.requests[-1]["headers"]["X-Formhooks-Submission"] == "uuid:x"


def test_send_test_shows_the_ssrf_guard_message(app, make_app, make):
    other = make_app(SSRF_ALLOWED_NETWORKS="")
    form_uid, _ = make.form()
    uid = make.hook(form_uid, endpoint="http://localhost:9/hook")
    make.user("ed@example.org", role="editor")
    browser = Browser(other.test_client())
    browser.login("ed@example.org")
    response = browser.post(f"/forms/{form_uid}/hooks/{uid}/test")
    page = browser.get(response.headers["Location"]).text
    assert "The test could not be delivered" in page
    assert "loopback" in page


def test_delete_a_hook_after_confirmation(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    add_logs(app, uid, 2)
    page = editor.get(f"/forms/{form_uid}/hooks/{uid}/delete").text
    assert "Its 2 logs are deleted too" in page
    response = editor.post(f"/forms/{form_uid}/hooks/{uid}/delete")
    assert response.headers["Location"] == f"/forms/{form_uid}/hooks"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Hook)) == 0
        assert db.session.scalar(select(func.count()).select_from(DeliveryLog)) == 0


def test_hooks_of_another_form_are_not_found(editor, make):
    form_a, _ = make.form("A")
    form_b, _ = make.form("B")
    uid = make.hook(form_a)
    assert editor.get(f"/forms/{form_b}/hooks/{uid}").status_code == 404
    assert editor.post(f"/forms/{form_b}/hooks/{uid}/toggle").status_code == 404


def test_empty_state_invites_to_add_a_hook(editor, make):
    form_uid, _ = make.form()
    page = editor.get(f"/forms/{form_uid}/hooks").text
    assert "No REST service yet" in page and f"/forms/{form_uid}/hooks/new" in page


def test_moving_the_endpoint_to_another_host_needs_the_secrets_again(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(
        form_uid,
        endpoint="https://crm.example.org/hook",
        auth_level="basic_auth",
        username="crm",
        password="old-password",
        custom_headers={"X-Api-Key": "old-key"},
    )
    page = editor.get(f"/forms/{form_uid}/hooks/{uid}").text
    assert "another host" in page  # the note next to the endpoint
    kept_header = {
        "custom_headers-0-name": "X-Api-Key",
        "custom_headers-0-value": "",
        "custom_headers-0-original": "X-Api-Key",
    }
    moved = {"endpoint": "https://evil.example/collect", "auth_level": "basic_auth"}
    response = editor.post(
        f"/forms/{form_uid}/hooks/{uid}", hook_data(username="crm", **moved, **kept_header)
    )
    assert response.status_code == 400
    assert "enter the password again" in field_errors(response.text, "auth")
    assert the_hook(app, uid).endpoint == "https://crm.example.org/hook"  # nothing changed
    # With the password typed again, the header value not typed again is cleared, and said so.
    response = editor.post(
        f"/forms/{form_uid}/hooks/{uid}",
        hook_data(username="crm", password="new-password", **moved, **kept_header),
    )
    assert response.status_code == 302, response.text
    hook = the_hook(app, uid)
    assert hook.endpoint == "https://evil.example/collect" and hook.password == "new-password"
    assert hook.custom_headers == {}
    page = editor.get(response.headers["Location"]).text
    assert "X-Api-Key" in page and "cleared" in page
