"""A report run against a real SMTP server: who gets what, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.reports.reports_support import BASE_URL, SENDER, send
from webapp.delivery.retries import retry_log
from webapp.extensions import db
from webapp.models import FAILED, DeliveryLog


def scenario(failures):
    """Two forms of alice (opted in), one of bob (opted out); hooks with and without reports."""
    failures.user("alice@example.org")
    failures.user("bob@example.org", opt_in=False)
    survey = failures.form("Household survey", "alice@example.org")
    water = failures.form("Water points", "alice@example.org")
    bobs = failures.form("Bob's form", "bob@example.org")
    crm = failures.hook(survey, "CRM", emails=["ops@example.org", "Alice@example.org"])
    dwh = failures.hook(survey, "Data warehouse")
    quiet = failures.hook(survey, "Quiet", notify=False)
    gis = failures.hook(water, "GIS")
    bob_hook = failures.hook(bobs, "Bob's CRM", emails=["partner@example.org"])
    at = datetime(2026, 11, 28, 13, 2, tzinfo=UTC)
    uids = {
        "crm": failures.failed(
            crm,
            "uuid:crm-1",
            401,
            "HTTP 401: <html><body><h1>Unauthorized</h1>\n  <p>Bad   token</p></body></html>",
            at=at,
        ),
        "dwh": failures.failed(
            dwh, "uuid:dwh-1", None, "Connection refused by dwh.example.org:443.", at=at
        ),
        "quiet": failures.failed(quiet, "uuid:quiet-1", 500, at=at),
        "gis": failures.failed(
            gis,
            "uuid:gis-1",
            None,
            "Refused: gis.local resolves to 10.1.2.3, private; Formhooks does not send to "
            "internal addresses (see SSRF_ALLOWED_NETWORKS).",
            at=at,
        ),
        "bob": failures.failed(bob_hook, "uuid:bob-1", 404, "HTTP 404: Not Found", at=at),
    }
    return uids, {"survey": survey, "water": water, "crm": crm, "dwh": dwh, "gis": gis}


def test_recipients_subject_and_parts(app, smtp, failures):
    scenario(failures)
    result = send(app)
    assert result.ok and result.emails == 3
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [
        "alice@example.org",  # owner, opted in (and listed on CRM: one email, not two)
        "ops@example.org",  # extra address of CRM
        "partner@example.org",  # extra address of bob's hook; bob opted out
    ]
    [alice] = smtp.to("alice@example.org")
    assert alice.to == "alice@example.org"
    assert alice.message["From"] == SENDER
    assert alice.subject == "Formhooks: 3 failed deliveries in 2 forms"
    [alternative] = alice.message.iter_parts()  # Flask-Mail wraps it in multipart/mixed
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert alice.text and alice.html.lstrip().startswith("<!doctype html>")
    [ops] = smtp.to("ops@example.org")
    assert ops.subject == "Formhooks: 1 failed delivery in 1 form"
    assert "uuid:crm-1" in ops.text and "uuid:dwh-1" not in ops.text
    [partner] = smtp.to("partner@example.org")
    assert "uuid:bob-1" in partner.text
    for received in smtp.messages:
        # The hook with email_notification off is never reported.
        assert "uuid:quiet-1" not in received.text + received.html
        assert received.message["Auto-Submitted"] == "auto-generated"


def test_rows_links_grouping_and_hints(app, smtp, failures):
    uids, ids = scenario(failures)
    send(app)
    [alice] = smtp.to("alice@example.org")
    text, html = alice.text, alice.html
    # Forms in name order, hooks in name order within their form.
    order = [
        "Form: Household survey",
        "Hook: CRM",
        "uuid:crm-1",
        "Hook: Data warehouse",
        "uuid:dwh-1",
        "Form: Water points",
        "Hook: GIS",
        "uuid:gis-1",
    ]
    for part in (text, html):
        positions = [part.index(marker) for marker in order]
        assert positions == sorted(positions)
    # A row: instance id (not the log id), status code, readable excerpt, time, link.
    crm_log = f"{BASE_URL}/forms/{ids['survey']}/hooks/{ids['crm']}/logs/{uids['crm']}"
    assert "Submission: uuid:crm-1" in text
    assert "Status: 401 | Last attempt: 2026-11-28 13:02 UTC" in text
    assert "Message: HTTP 401: Unauthorized Bad token" in text
    assert f"Log: {crm_log}" in text
    assert "<code>uuid:crm-1</code>" in html and "<td>401</td>" in html
    assert "<td>HTTP 401: Unauthorized Bad token</td>" in html
    assert f'<a href="{crm_log}">' in html
    assert "Status: no HTTP answer" in text
    # Per hook: its logs page (retry all failed) and the likely cause.
    for hook in ("crm", "dwh"):
        logs = f"{BASE_URL}/forms/{ids['survey']}/hooks/{ids[hook]}/logs"
        assert f"\n  {logs}\n" in text and f'<a href="{logs}">' in html
    assert "check the hook's username, password" in text
    assert "is the server up" in text
    assert "The address is internal" in text
    assert "The address is internal" in html
    assert "BASE_URL is not set" not in text
    [partner] = smtp.to("partner@example.org")
    assert "check the hook's URL" in partner.text


def test_each_failure_once_then_nothing(app, smtp, failures):
    uids, _ = scenario(failures)
    first = send(app)
    assert first.emails == 3 and first.reported == 4  # crm, dwh, gis, bob
    logs = failures.logs()
    assert logs[uids["quiet"]].reported_at is None  # stays unreported while reports are off
    assert all(logs[uids[k]].reported_at for k in ("crm", "dwh", "gis", "bob"))
    assert all(entry.report_claimed_until is None for entry in logs.values())
    smtp.clear()
    second = send(app)
    assert (second.emails, second.reported, second.errors) == (0, 0, [])
    assert second.summary() == "No new failed deliveries to report; no email sent."
    assert smtp.messages == []


def test_no_failures_no_email(app, smtp, failures):
    failures.user("alice@example.org")
    form = failures.form("Survey", "alice@example.org")
    failures.hook(form, "CRM", emails=["ops@example.org"])
    assert send(app).emails == 0
    assert smtp.messages == []


def test_a_manual_retry_that_fails_again_is_reported_again(app, smtp, failures):
    failures.user("alice@example.org")
    hook = failures.hook(failures.form("Survey", "alice@example.org"), "CRM")
    uid = failures.failed(hook, "uuid:1")
    send(app)
    assert len(smtp.messages) == 1
    with app.app_context():
        entry = db.session.query(DeliveryLog).filter_by(uid=uid).one()
        assert retry_log(entry)
        entry = db.session.query(DeliveryLog).filter_by(uid=uid).one()
        assert entry.reported_at is None
        entry.status, entry.message = FAILED, "HTTP 500: again"
        db.session.commit()
    send(app)
    assert len(smtp.messages) == 2
    assert "HTTP 500: again" in smtp.messages[1].text


def test_owner_inactive_or_opted_out_gets_nothing_and_failure_is_settled(app, smtp, failures):
    failures.user("gone@example.org", active=False)
    uid = failures.failed(failures.hook(failures.form("Old", "gone@example.org"), "CRM"), "u:1")
    result = send(app)
    assert smtp.messages == [] and result.unaddressed == 1
    assert failures.logs()[uid].reported_at is not None


def test_without_base_url_links_use_the_local_address_and_say_so(make_app, smtp, failures):
    failures.user("alice@example.org")
    form = failures.form("Survey", "alice@example.org")
    hook = failures.hook(form, "CRM")
    uid = failures.failed(hook, "uuid:1")
    other = make_app(BASE_URL="", PORT="5055")
    assert other.config["BASE_URL"] is None
    send(other)
    [received] = smtp.messages
    assert f"http://127.0.0.1:5055/forms/{form}/hooks/{hook}/logs/{uid}" in received.text
    assert "BASE_URL is not set" in received.text and "BASE_URL is not set" in received.html


def test_the_report_in_the_recipients_language_falls_back_to_english(app, smtp, failures):
    with app.app_context():
        assert "babel" in app.extensions  # Flask-Babel is on: templates use its gettext
    failures.user("alice@example.org")
    with app.app_context():
        from webapp.models import User

        User.by_email("alice@example.org").language = "fr"
        db.session.commit()
    failures.failed(failures.hook(failures.form("Survey", "alice@example.org"), "CRM"), "u:1")
    assert send(app).emails == 1
    [received] = smtp.messages
    assert "u:1" in received.text and "u:1" in received.html


def test_a_real_delivery_failure_is_reported(app, client, smtp, make):
    """Ingest -> RQ worker -> refused internal address (final at once) -> report."""
    from rq import SimpleWorker

    from tests.helpers import fixture_bytes
    from webapp.delivery import queue as q

    form_uid, token = make.form()  # owner alice@example.org, opted in by default
    hook_uid = make.hook(form_uid, endpoint="http://127.0.0.1:9/hook", name="Local CRM")
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=fixture_bytes("nested.json"),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    with app.app_context():
        connection = q.redis_connection()
        SimpleWorker([q.delivery_queue(connection)], connection=connection).work(burst=True)
        [entry] = db.session.query(DeliveryLog).all()
        assert entry.status == FAILED
    assert send(app).emails == 1
    [received] = smtp.messages
    assert received.rcpt_tos == ["alice@example.org"]
    assert "Submission: uuid:1c7a9e02-3d4b-4f6a-b8e1-5f0d2c9a7b64" in received.text
    assert f"/forms/{form_uid}/hooks/{hook_uid}/logs/{entry.uid}" in received.text
    assert "The address is internal" in received.text
