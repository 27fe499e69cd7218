"""Signed deliveries (docs/signatures.md), checked by the official `standardwebhooks` package.

A real RQ worker sends to a real endpoint; the receiver's side is
`standardwebhooks.webhooks.Webhook(secret).verify(body, headers)` on exactly
what the endpoint got. Time is driven: retries by make_retries_due, the
end of a rotation's overlap by moving its date back, and the signing clock
(webapp.delivery.signatures.clock) where two tries must be seconds apart.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.helpers import (
    LOOPBACK_HOOKS,
    fixture_bytes,
    load_logs,
    make_retries_due,
    post_fixture,
    run_worker,
)
from webapp.delivery import signatures
from webapp.delivery.headers import RESERVED
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook
from webapp.models.base import utcnow

pytestmark = pytest.mark.settings(**LOOPBACK_HOOKS)


def secret_of(app, hook_uid: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Hook).where(Hook.uid == hook_uid)).signing_secret


def rotate(app, hook_uid: str) -> tuple[str, str]:
    """(new secret, old secret)."""
    with app.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        old = hook.signing_secret
        new = hook.rotate_signing_secret()
        db.session.commit()
        return new, old


def verified(secret: str, received: dict) -> bool:
    try:
        Webhook(secret).verify(received["body"], received["headers"], json_parse=False)
    except WebhookVerificationError:
        return False
    return True


def timed_run(app) -> tuple[int, int]:
    """Run the worker; the whole Unix seconds it ran between."""
    before = int(time.time())
    run_worker(app)
    return before, int(time.time())


def test_a_json_delivery_verifies_with_the_hooks_secret(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    before, after = timed_run(app)
    [received] = endpoint.requests
    secret = secret_of(app, hook_uid)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert Webhook(secret).verify(received["body"], received["headers"]) == json.loads(
        received["body"]
    )
    headers = received["headers"]
    [entry] = load_logs(app)
    assert headers["webhook-id"] == headers["X-Formhooks-Delivery"] == entry.uid
    assert before <= int(headers["webhook-timestamp"]) <= after
    assert (
        headers["webhook-signature"].startswith("v1,") and " " not in headers["webhook-signature"]
    )
    # The spec's own vector: our signing is the libraries'.
    key = signatures.secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert (
        signatures.signature(
            (key,), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_an_xml_delivery_verifies(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url, export_type="xml")
    post_fixture(client, form_uid, token, "odk_instance.xml", "application/xml")
    run_worker(app)
    [received] = endpoint.requests
    assert received["body"] == fixture_bytes("odk_instance.xml")
    assert verified(secret_of(app, hook_uid), received)


def test_a_wrapped_subset_verifies_over_the_bytes_sent(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(
        form_uid,
        endpoint=endpoint.url,
        subset_fields=["consent"],
        payload_template='{"source": "formhooks",   "data": %SUBMISSION%}',
    )
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    assert json.loads(received["body"]) == {"source": "formhooks", "data": {"consent": True}}
    assert verified(secret_of(app, hook_uid), received)


def test_a_tampered_body_id_or_timestamp_fails(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    secret = secret_of(app, hook_uid)
    assert verified(secret, received)
    body = received["body"].replace(b"Kofi", b"Kofy")
    assert body != received["body"]
    assert not verified(secret, {**received, "body": body})
    headers = received["headers"]
    for name, value in [
        ("webhook-id", headers["webhook-id"] + "x"),
        ("webhook-timestamp", str(int(headers["webhook-timestamp"]) - 1)),
    ]:
        assert not verified(secret, {**received, "headers": {**headers, name: value}})
    other = make.hook(form_uid, endpoint=endpoint.url, name="other")
    assert not verified(secret_of(app, other), received)  # each hook has its own secret


def test_retries_keep_the_id_and_are_signed_anew(app, client, make, endpoint, monkeypatch):
    endpoint.statuses = [500, 200]
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    # The first try "was" two minutes ago: within the receivers' 5 minutes.
    first_at = int(time.time()) - 120
    monkeypatch.setattr(signatures, "clock", lambda: first_at + 0.5)
    run_worker(app)
    monkeypatch.undo()
    make_retries_due(app)
    before, after = timed_run(app)
    first, retry = endpoint.wait_for(2)
    secret = secret_of(app, hook_uid)
    assert verified(secret, first) and verified(secret, retry)
    [entry] = load_logs(app)
    assert (entry.status, entry.tries) == ("success", 2)
    assert first["headers"]["webhook-id"] == retry["headers"]["webhook-id"] == entry.uid
    assert int(first["headers"]["webhook-timestamp"]) == first_at
    assert before <= int(retry["headers"]["webhook-timestamp"]) <= after
    assert first["headers"]["webhook-signature"] != retry["headers"]["webhook-signature"]
    assert first["body"] == retry["body"]


def test_a_manual_retry_keeps_the_id(app, client, make, endpoint):
    from webapp.delivery.retries import retry_log

    endpoint.statuses = [410, 200]
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    post_fixture(client, form_uid, token)
    with app.app_context():
        db.session.execute(update(DeliveryLog).values(tries=3))  # the last try: fails for good
        db.session.commit()
    run_worker(app)
    with app.app_context():
        entry = db.session.scalar(select(DeliveryLog))
        assert entry.status == "failed"
        retry_log(entry)
    run_worker(app)
    first, again = endpoint.wait_for(2)
    assert first["headers"]["webhook-id"] == again["headers"]["webhook-id"]
    assert verified(secret_of(app, hook_uid), again)


def test_after_a_rotation_both_secrets_verify_for_24_hours_then_only_the_new(
    app, client, make, endpoint
):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    new, old = rotate(app, hook_uid)
    assert new != old and new.startswith("whsec_")
    post_fixture(client, form_uid, token)
    run_worker(app)
    [during] = endpoint.requests
    assert verified(new, during) and verified(old, during)
    new_sig, old_sig = during["headers"]["webhook-signature"].split(" ")
    assert verified(new, {**during, "headers": {**during["headers"], "webhook-signature": new_sig}})
    assert not verified(
        new, {**during, "headers": {**during["headers"], "webhook-signature": old_sig}}
    )
    # 24 hours later (the rotation's date moved back, not slept).
    with app.app_context():
        db.session.execute(
            update(Hook).values(signing_secret_rotated_at=utcnow() - timedelta(hours=24, seconds=1))
        )
        db.session.commit()
    post_fixture(client, form_uid, token, "kobo_flat.json")
    run_worker(app)
    after = endpoint.wait_for(2)[1]
    assert " " not in after["headers"]["webhook-signature"]
    assert verified(new, after) and not verified(old, after)


def test_a_second_rotation_drops_the_oldest_secret(app, client, make, endpoint):
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    _, first = rotate(app, hook_uid)
    newest, second = rotate(app, hook_uid)
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    assert verified(newest, received) and verified(second, received)
    assert not verified(first, received)


def test_no_custom_header_can_replace_the_signature_headers(app, client, make, endpoint):
    from webapp.hook_settings import clean_hook_settings

    assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= RESERVED
    assert set(signatures.HEADER_NAMES) <= RESERVED
    with app.test_request_context():
        for name in ("webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE"):
            _, problems = clean_hook_settings(
                {
                    "name": "H",
                    "endpoint": endpoint.url,
                    "settings": {"custom_headers": {name: "v1,forged"}},
                },
            )
            assert [p.code for p in problems] == ["header.reserved"], name
    # A hook stored with such headers anyway (before the rule) still sends Formhooks' own.
    form_uid, token = make.form()
    hook_uid = make.hook(
        form_uid,
        endpoint=endpoint.url,
        custom_headers={
            "Webhook-Signature": "v1,forged",
            "webhook-id": "forged",
            "Webhook-Timestamp": "1",
            "X-Kept": "yes",
        },
    )
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    assert received["headers"]["X-Kept"] == "yes"
    assert "forged" not in json.dumps(received["headers"])
    assert verified(secret_of(app, hook_uid), received)


def test_a_hook_without_a_secret_gets_one_on_its_first_send(app, client, make, endpoint):
    """A hook migrated where the app's key could not be reached (docs/signatures.md)."""
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    with app.app_context():
        db.session.execute(update(Hook).values(signing_secret_encrypted=None))
        db.session.commit()
    post_fixture(client, form_uid, token)
    run_worker(app)
    [received] = endpoint.requests
    secret = secret_of(app, hook_uid)
    assert secret is not None and verified(secret, received)


def test_the_secret_is_never_logged_nor_stored_in_clear(app, client, make, endpoint, caplog):
    """What is stored and logged of a delivery never holds it; the hook row only encrypted."""
    endpoint.statuses = [500]
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    secret = secret_of(app, hook_uid)
    caplog.set_level(logging.DEBUG)
    post_fixture(client, form_uid, token)
    run_worker(app)
    [entry] = load_logs(app)
    stored = entry.message + " ".join(a.message for a in entry.attempts)
    with app.app_context():
        row = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        columns = [str(getattr(row, c.key)) for c in Hook.__table__.columns]
    key = secret.removeprefix("whsec_")
    for text in [stored, caplog.text, *columns]:
        assert key not in text


def test_a_secret_the_key_cannot_read_fails_that_hooks_sends_until_rotated(
    app, client, make, make_app, endpoint
):
    """ENCRYPTION_KEY changed without keeping the old key: clear failures, no stalled worker."""
    form_uid, token = make.form()
    hook_uid = make.hook(form_uid, endpoint=endpoint.url)
    other = make_app(ENCRYPTION_KEY="a key that never encrypted anything")
    post_fixture(client, form_uid, token)
    run_worker(other)
    assert endpoint.requests == []
    [entry] = load_logs(other)
    assert entry.status == "pending" and entry.tries == 1 and entry.next_retry_at is not None
    assert "Cannot decrypt a stored secret" in entry.message
    with other.app_context():
        hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid))
        assert hook.readable_signing_secret() is None
        new = hook.rotate_signing_secret()
        assert hook.previous_signing_secret_encrypted is None  # unreadable: not kept
        db.session.commit()
    make_retries_due(other)
    run_worker(other)
    [received] = endpoint.wait_for(1)
    assert verified(new, received) and " " not in received["headers"]["webhook-signature"]
    assert load_logs(other)[0].status == "success"
