"""A hook's signing secret in the panel: shown only when an editor asks (a POST with its
CSRF token), never to viewers, rotated with a confirmation; "Send test" is signed too."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from tests.admin.admin_support import post_submission
from tests.helpers import LOOPBACK_HOOKS
from webapp.extensions import db
from webapp.models import Hook

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


def secrets_of(app, hook_uid: str) -> tuple[str, str | None]:
    """(current, previous) as stored, decrypted."""
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        previous = hook.previous_signing_secret_encrypted
        box = app.extensions["formhooks.secret_box"]
        return hook.signing_secret, box.decrypt(previous) if previous else None


def key_of(secret: str) -> str:
    return secret.removeprefix("whsec_")


def test_the_hook_page_never_holds_the_secret_until_asked(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    secret, _ = secrets_of(app, uid)
    page = editor.get(f"/forms/{form_uid}/hooks/{uid}")
    assert page.status_code == 200
    assert "Show signing secret" in page.text and key_of(secret) not in page.text
    assert editor.get(f"/forms/{form_uid}/hooks/{uid}/signing-secret").status_code == 405
    refused = editor.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret", csrf=False)
    assert refused.status_code == 400 and key_of(secret) not in refused.text
    shown = editor.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret")
    assert shown.status_code == 200
    assert f'value="{secret}"' in shown.text
    assert shown.headers["Cache-Control"] == "no-store"
    assert key_of(secret) not in editor.get(f"/forms/{form_uid}/hooks/{uid}").text


def test_admins_see_it_too(app, admin, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    shown = admin.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret")
    assert shown.status_code == 200 and secrets_of(app, uid)[0] in shown.text


def test_viewers_never_see_nor_rotate_it(app, viewer, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    before = secrets_of(app, uid)
    page = viewer.get(f"/forms/{form_uid}/hooks/{uid}")
    assert page.status_code == 200
    assert "Only editors and administrators can see the secret" in page.text
    assert "Show signing secret" not in page.text and "Rotate the secret" not in page.text
    for path in ("signing-secret", "signing-secret/rotate"):
        response = viewer.post(f"/forms/{form_uid}/hooks/{uid}/{path}")
        assert response.status_code == 403
        assert key_of(before[0]) not in response.text
    assert secrets_of(app, uid) == before


def test_rotate_needs_the_csrf_token_and_shows_the_new_secret(app, editor, make):
    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    old, _ = secrets_of(app, uid)
    page = editor.get(f"/forms/{form_uid}/hooks/{uid}").text
    assert "Rotate the secret now" in page and "<details" in page  # asked first
    refused = editor.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret/rotate", csrf=False)
    assert refused.status_code == 400 and secrets_of(app, uid) == (old, None)
    response = editor.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret/rotate")
    assert response.status_code == 200
    new, previous = secrets_of(app, uid)
    assert new != old and previous == old
    assert f'value="{new}"' in response.text and key_of(old) not in response.text
    assert "The previous secret still signs too" in response.text
    assert "A new signing secret was made" in response.text


def test_a_hook_created_in_the_panel_has_a_secret(app, editor, make):
    form_uid, _ = make.form()
    response = editor.post(
        f"/forms/{form_uid}/hooks/new",
        {
            "name": "CRM",
            "endpoint": "https://crm.example.org/hook",
            "active": "y",
            "export_type": "json",
            "auth_level": "no_auth",
            "action": "save",
        },
    )
    assert response.status_code == 302, response.text
    with app.app_context():
        hook = db.session.scalar(select(Hook))
        assert hook.signing_secret.startswith("whsec_")


def test_send_test_is_signed(app, client, editor, make, endpoint):
    form_uid, token = make.form()
    uid = make.hook(form_uid, endpoint=endpoint.url)
    post_submission(client, form_uid, token)
    editor.post(f"/forms/{form_uid}/hooks/{uid}/test")
    received = endpoint.requests[-1]
    assert received["headers"]["webhook-id"].startswith("test-")
    assert received["headers"]["webhook-id"] == received["headers"]["X-Formhooks-Delivery"]
    secret, _ = secrets_of(app, uid)
    Webhook(secret).verify(received["body"], received["headers"])


def test_a_logs_page_lists_the_signature_headers_never_the_secret(app, client, editor, make):
    from tests.admin.admin_support import add_logs

    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    [log_uid] = add_logs(app, uid, 1)
    html = editor.get(f"/forms/{form_uid}/hooks/{uid}/logs/{log_uid}").text
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        assert name in html
    assert html.count(log_uid) >= 2  # X-Formhooks-Delivery and webhook-id
    assert key_of(secrets_of(app, uid)[0]) not in html


def test_a_secret_the_key_cannot_read_says_so(app, make, make_app):
    from tests.admin.admin_support import PASSWORD, Browser

    form_uid, _ = make.form()
    uid = make.hook(form_uid)
    make.user("ed@example.org", role="editor", password=PASSWORD)
    browser = Browser(make_app(ENCRYPTION_KEY="another key").test_client())
    browser.login("ed@example.org")
    page = browser.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret")
    assert page.status_code == 200
    assert "cannot be read with the current encryption key" in page.text
    rotated = browser.post(f"/forms/{form_uid}/hooks/{uid}/signing-secret/rotate")
    assert 'value="whsec_' in rotated.text
