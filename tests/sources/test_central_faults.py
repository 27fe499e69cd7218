"""Nothing lost, nothing twice: a poller killed mid-backfill, Central down, bad settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from webapp.extensions import db
from webapp.models import DeliveryLog, Source, Submission
from webapp.models.base import secret_box, utcnow
from webapp.sources import cursor, poller


class Killed(BaseException):
    """What a worker killed mid-poll looks like to the poll: it stops right there."""


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _yesterday() -> str:
    return (utcnow() - timedelta(days=1)).isoformat()


def test_a_poller_killed_mid_backfill_resumes_without_loss_or_duplicates(
    app, make, central, sources, endpoint, monkeypatch
):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    made = [central.submit(project, form_id, name=f"n{i}") for i in range(12)]
    source_id = sources.connect(form_uid, project, form_id, since=_yesterday(), send_backfill=True)
    monkeypatch.setattr(poller, "PAGE_SIZE", 5)

    def die_after_seven(stored: int) -> None:
        if stored == 7:
            raise Killed

    monkeypatch.setattr(poller, "AFTER_STORE", die_after_seven)
    with pytest.raises(Killed), app.app_context():
        sources.make_due(source_id)
        poller.poll_source(source_id)
    assert _count(app, Submission) == 7
    held = sources.state(source_id)
    assert held.lease_owner is not None  # a dead poller releases nothing
    monkeypatch.setattr(poller, "AFTER_STORE", None)

    sources.poll(source_id)  # still leased: the lease must expire first
    assert _count(app, Submission) == 7
    sources.poll(source_id, expire_lease=True)

    received = endpoint.wait_for(12)
    assert len(received) == 12
    with app.app_context():
        stored = set(db.session.scalars(select(Submission.instance_id)))
        edits = db.session.scalar(select(func.sum(Submission.edit_count)))
    assert stored == set(made)
    assert edits == 0  # nothing was stored twice
    assert _count(app, DeliveryLog) == 12
    assert sources.state(source_id).received_count == 12


def test_a_backfill_is_stored_but_not_sent_unless_asked(app, make, central, sources, endpoint):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url, send_edits=True)
    project, form_id = central.new_form()
    old = [central.submit(project, form_id) for _ in range(3)]
    edited = central.edit(project, form_id, old[0], old[0], name="edited before connecting")
    source_id = sources.connect(form_uid, project, form_id, since=_yesterday())
    sources.poll(source_id)
    assert _count(app, Submission) == 4  # the edit is stored as a version, and sent neither
    assert _count(app, DeliveryLog) == 0

    new = central.submit(project, form_id, name="after connecting")
    sources.poll(source_id)
    received = endpoint.wait_for(1)
    assert len(received) == 1 and b"after connecting" in received[0]["body"]
    with app.app_context():
        assert set(db.session.scalars(select(Submission.instance_id))) == {*old, edited, new}


def test_wrong_credentials_give_a_clear_status_and_fixing_them_resumes(
    app, make, central, sources, endpoint
):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id, password="not the password")
    first = central.submit(project, form_id)
    sources.poll(source_id)

    state = sources.state(source_id)
    assert state.status == "error" and state.error_code == "login"
    assert "check the email and password" in state.last_error
    assert state.next_poll_at > utcnow()
    assert "not the password" not in state.last_error
    sources.poll(source_id)  # still wrong: the wait doubles
    again = sources.state(source_id)
    assert again.failures == 2
    assert again.next_poll_at - again.last_polled_at > state.next_poll_at - state.last_polled_at

    from webapp.sources.settings import apply_source_settings, clean_source_settings

    with app.app_context():
        source = db.session.get(Source, source_id)
        cleaned, errors = clean_source_settings(
            {"password": central.server.password}, source=source
        )
        assert not errors
        apply_source_settings(source, cleaned)
        db.session.commit()
    assert sources.state(source_id).next_poll_at <= utcnow()  # due at once
    sources.poll(source_id)
    assert len(endpoint.wait_for(1)) == 1
    fixed = sources.state(source_id)
    assert fixed.status == "ok" and fixed.last_error is None and fixed.failures == 0
    with app.app_context():
        assert db.session.scalar(select(Submission.instance_id)) == first


def test_an_unknown_form_is_reported(app, make, central, sources):
    form_uid, _ = make.form()
    project, _form_id = central.new_form()
    source_id = sources.connect(form_uid, project, "no_such_form")
    sources.poll(source_id)
    state = sources.state(source_id)
    assert state.status == "error" and state.error_code == "not_found"
    assert "check the project id and the form id" in state.last_error


def test_central_stopped_then_restarted(app, make, central, sources, endpoint):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id)
    first = central.submit(project, form_id)
    sources.poll(source_id)
    assert len(endpoint.wait_for(1)) == 1

    central.server.stop()
    try:
        sources.poll(source_id)
        down = sources.state(source_id)
        assert down.status == "error" and down.error_code == "unreachable"
        assert "Cannot connect to 127.0.0.1" in down.last_error
    finally:
        central.server.start()
    central.login()
    second = central.submit(project, form_id)
    sources.poll(source_id)
    received = endpoint.wait_for(2)
    assert len(received) == 2
    with app.app_context():
        assert set(db.session.scalars(select(Submission.instance_id))) == {first, second}
    assert sources.state(source_id).status == "ok"


def test_an_expired_central_session_is_renewed(app, make, central, sources, endpoint):
    form_uid, _ = make.form()
    make.hook(form_uid, endpoint=endpoint.url)
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id)
    with app.app_context():
        db.session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(
                session_token_encrypted=secret_box().encrypt("expired-or-revoked"),
                session_expires_at=utcnow() + timedelta(hours=1),
            )
        )
        db.session.commit()
    central.submit(project, form_id)
    sources.poll(source_id)
    assert len(endpoint.wait_for(1)) == 1
    state = sources.state(source_id)
    assert state.status == "ok"
    with app.app_context():
        assert secret_box().decrypt(state.session_token_encrypted) != "expired-or-revoked"


def test_a_central_url_resolving_to_an_internal_address_is_refused(
    make_app, make, central, sources
):
    form_uid, _ = make.form()
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id)
    strict = make_app(SSRF_ALLOWED_NETWORKS="")
    with strict.app_context():
        db.session.execute(
            update(Source)
            .where(Source.id == source_id)
            .values(url=central.server.url.replace("127.0.0.1", "localhost"))
        )
        db.session.commit()
        poller.poll_source(source_id)
        state = db.session.get(Source, source_id)
        assert state.status == "error" and state.error_code == "blocked"
        assert "internal addresses" in state.last_error


def test_two_pollers_never_hold_one_source(app, make, central, sources):
    form_uid, _ = make.form()
    project, form_id = central.new_form()
    source_id = sources.connect(form_uid, project, form_id)
    with app.app_context():
        now = utcnow()
        first = cursor.claim(source_id, now, timedelta(0))
        second = cursor.claim(source_id, now, timedelta(0))
        assert first is not None and second is None
        assert poller.poll_source(source_id) is None  # a second job is a no-op
        later = now + cursor.LEASE + timedelta(seconds=1)
        third = cursor.claim(source_id, later, timedelta(0))  # the first one died
        assert third is not None
        with pytest.raises(cursor.LeaseLost):
            cursor.renew(source_id, first)
