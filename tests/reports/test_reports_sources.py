"""Sources in error in the failure digest: each new error once, to the form owner.

Errors are recorded by the poller's own functions (webapp.sources.cursor), and
the digests go to a real SMTP server (aiosmtpd), as for failed deliveries.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.reports.reports_support import BASE_URL, send
from webapp.extensions import db
from webapp.models import Form, Source
from webapp.models.base import utcnow
from webapp.sources import cursor

CENTRAL = "https://central.example.org"


def connect(app, form_uid: str) -> int:
    with app.app_context():
        form = db.session.scalar(select(Form).where(Form.uid == form_uid))
        source = Source(
            form=form,
            url=CENTRAL,
            project_id=7,
            xml_form_id="household",
            email="field@example.org",
            password="s3cret-central-password",  # noqa: S106
        )
        db.session.add(source)
        db.session.commit()
        return source.id


def _take_the_lease(source_id: int):
    """Make the source due now and claim it, as a poll starts: (now, lease owner)."""
    now = utcnow()
    db.session.execute(
        Source.__table__.update()
        .where(Source.id == source_id)
        .values(next_poll_at=now, leased_until=None)
    )
    db.session.commit()
    owner = cursor.claim(source_id, now, tolerance=timedelta(0))
    assert owner is not None
    return now, owner


def poll_fails(app, source_id: int, code: str = "login", message: str = "") -> None:
    """What a failed poll records (the lease taken, then finish_error)."""
    message = message or "ODK Central refused the login of field@example.org."
    with app.app_context():
        now, owner = _take_the_lease(source_id)
        source = db.session.get(Source, source_id)
        cursor.finish_error(
            source_id,
            owner,
            code=code,
            message=message,
            now=now,
            interval=60,
            fingerprint=cursor.settings_fingerprint(source),
        )


def poll_succeeds(app, source_id: int) -> None:
    with app.app_context():
        now, owner = _take_the_lease(source_id)
        cursor.finish_ok(source_id, owner, polled_at=now, next_poll_at=now)


def reported_at(app, source_id: int):
    with app.app_context():
        return db.session.get(Source, source_id).error_reported_at


def test_a_source_error_is_reported_once_to_the_form_owner(app, smtp, failures):
    failures.user("alice@example.org")
    survey = failures.form("Household survey", "alice@example.org")
    failures.hook(survey, "CRM", emails=["ops@example.org"])  # no failure: nothing for ops
    source_id = connect(app, survey)
    poll_fails(app, source_id)

    result = send(app)
    assert result.ok and result.emails == 1 and result.source_errors == 1
    assert result.reported == 0
    [received] = smtp.messages
    assert received.rcpt_tos == ["alice@example.org"]
    assert received.subject == "Formhooks: 1 source error"
    for part in (received.text, received.html):
        assert "Household survey" in part
        assert "ODK Central refused the login of field@example.org." in part
        assert "update the login" in part  # the likely cause
        assert f"{BASE_URL}/forms/{survey}/source" in part
        assert CENTRAL in part and "household" in part
        assert "s3cret-central-password" not in part
        assert "failed deliver" not in part
    assert received.text.startswith("Formhooks cannot fetch the submissions")
    assert reported_at(app, source_id) is not None

    poll_fails(app, source_id)  # the same error again: already told
    assert send(app).emails == 0
    assert len(smtp.messages) == 1


def test_a_source_error_and_failed_deliveries_share_one_email(app, smtp, failures):
    failures.user("alice@example.org")
    survey = failures.form("Household survey", "alice@example.org")
    water = failures.form("Water points", "alice@example.org")
    hook = failures.hook(survey, "CRM")
    failures.failed(hook, "uuid:crm-1")
    poll_fails(app, connect(app, water), code="unreachable", message="Connection refused.")

    result = send(app)
    assert result.emails == 1 and result.reported == 1 and result.source_errors == 1
    assert "1 source error reported" in result.summary()
    [received] = smtp.messages
    assert received.subject == "Formhooks: 1 failed delivery in 1 form, 1 source error"
    text = received.text
    assert text.index("Form: Household survey") < text.index("uuid:crm-1")
    assert text.index("Form: Water points") < text.index("Connection refused.")
    assert "is the server up" in text


def test_a_new_error_is_reported_again(app, smtp, failures):
    failures.user("alice@example.org")
    survey = failures.form("Household survey", "alice@example.org")
    source_id = connect(app, survey)
    poll_fails(app, source_id, code="login")
    assert send(app).emails == 1

    poll_fails(app, source_id, code="not_found", message="No form household in project 7.")
    assert send(app).emails == 1  # another cause: a new error
    assert "No form household in project 7." in smtp.messages[-1].text

    poll_succeeds(app, source_id)
    assert send(app).emails == 0  # fixed: nothing to say
    poll_fails(app, source_id, code="not_found", message="No form household in project 7.")
    assert send(app).emails == 1  # failing again after a good poll: a new error
    assert len(smtp.messages) == 3


def test_an_unsent_source_error_stays_due_and_a_fixed_one_is_not_sent(app, smtp, failures):
    failures.user("alice@example.org")
    failures.user("bob@example.org", opt_in=False)
    alices = connect(app, failures.form("Alice's form", "alice@example.org"))
    bobs = connect(app, failures.form("Bob's form", "bob@example.org"))
    poll_fails(app, alices)
    poll_fails(app, bobs)

    smtp.accept_only = 0  # 451 to every message
    result = send(app)
    assert result.emails == 0 and len(result.errors) == 1 and result.source_errors == 1
    assert reported_at(app, alices) is None  # kept for the next run
    assert reported_at(app, bobs) is not None  # nobody to tell (opted out): settled

    smtp.accept_only = None
    assert send(app).emails == 1
    assert reported_at(app, alices) is not None

    smtp.clear()
    fixed = connect(app, failures.form("Fixed form", "alice@example.org"))
    poll_fails(app, fixed)
    poll_succeeds(app, fixed)
    assert send(app).emails == 0
    assert smtp.messages == []
