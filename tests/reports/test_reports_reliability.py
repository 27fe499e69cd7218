"""Each failure is reported once: concurrent runs, crashes, SMTP errors, no mail settings.

The rule (docs/reports.md): claim with a lease, send, mark; a send error
releases the claim; a crash leaves the lease, and a run after it resends.
Time is moved by passing `now`, never slept.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from tests.helpers import free_port
from tests.reports.reports_support import send
from webapp.models.base import utcnow
from webapp.reports import mail_status, sending
from webapp.reports.sending import LEASE


def setup_failures(failures, count: int = 3, extra=("ops@example.org",)) -> list[str]:
    failures.user("alice@example.org")
    form = failures.form("Survey", "alice@example.org")
    hook = failures.hook(form, "CRM", emails=list(extra))
    return [failures.failed(hook, f"uuid:{i}") for i in range(count)]


def after_lease():
    return utcnow() + LEASE + timedelta(seconds=1)


def instance_ids(received) -> list[str]:
    return sorted(word for word in received.text.split() if word.startswith("uuid:"))


def test_two_concurrent_runs_send_each_failure_once(app, smtp, failures, monkeypatch):
    setup_failures(failures, count=6, extra=("ops@example.org", "field@example.org"))
    # Both runs claim before either sends: the second claims while the first holds its lease.
    barrier = threading.Barrier(2, timeout=20)
    claim = sending.claim_due

    def claim_then_wait(now, lease):
        ids = claim(now, lease)
        barrier.wait()
        return ids

    monkeypatch.setattr(sending, "claim_due", claim_then_wait)
    results, errors = [], []

    def run():
        try:
            results.append(send(app))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(r.emails for r in results) == [0, 3]
    assert sorted(r.rcpt_tos[0] for r in smtp.messages) == [
        "alice@example.org",
        "field@example.org",
        "ops@example.org",
    ]
    for received in smtp.messages:
        assert instance_ids(received) == [f"uuid:{i}" for i in range(6)]
    assert all(entry.reported_at for entry in failures.logs().values())


def test_a_crash_after_claiming_is_resent_after_the_lease(app, smtp, failures, monkeypatch):
    uids = setup_failures(failures, extra=())

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(sending, "build_digests", crash)
    with pytest.raises(RuntimeError):
        send(app)
    monkeypatch.undo()
    logs = failures.logs()
    assert all(logs[uid].report_claimed_until and not logs[uid].reported_at for uid in uids)
    assert send(app).emails == 0  # the lease still holds
    assert smtp.messages == []
    assert send(app, now=after_lease()).emails == 1
    [received] = smtp.messages
    assert instance_ids(received) == ["uuid:0", "uuid:1", "uuid:2"]
    assert send(app, now=after_lease()).emails == 0


def test_a_crash_after_sending_resends_rather_than_loses(app, smtp, failures, monkeypatch):
    setup_failures(failures, extra=())

    def crash(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(sending, "mark_reported", crash)
    with pytest.raises(RuntimeError):
        send(app)
    monkeypatch.undo()
    assert len(smtp.messages) == 1
    assert send(app).emails == 0
    assert send(app, now=after_lease()).emails == 1  # sent again: a duplicate, not a loss
    assert len(smtp.messages) == 2
    assert send(app, now=after_lease()).emails == 0


def test_smtp_failing_after_the_first_message_keeps_the_rest_due(app, smtp, failures):
    crm_uids = setup_failures(failures, count=2)  # alice (owner) and ops
    form = failures.form("Other", "alice@example.org")
    dwh_uid = failures.failed(failures.hook(form, "DWH"), "uuid:dwh")
    smtp.accept_only = 1  # alice's digest goes through, then 451
    result = send(app)
    assert result.emails == 1 and len(result.errors) == 1
    assert result.errors[0].startswith("ops@example.org: SMTP 451")
    assert result.kept_due == 2
    logs = failures.logs()
    assert logs[dwh_uid].reported_at is not None  # only in alice's digest, which was sent
    for uid in crm_uids:
        assert logs[uid].reported_at is None and logs[uid].report_claimed_until is None
    smtp.accept_only = None
    smtp.clear()
    again = send(app)
    assert again.ok and again.emails == 2
    [ops] = smtp.to("ops@example.org")
    assert instance_ids(ops) == ["uuid:0", "uuid:1"]
    [alice] = smtp.to("alice@example.org")  # a resend to alice: never a loss for ops
    assert instance_ids(alice) == ["uuid:0", "uuid:1"]
    assert all(entry.reported_at for entry in failures.logs().values())


def test_smtp_down_leaves_every_failure_due(app, make_app, smtp, failures, caplog):
    uids = setup_failures(failures)
    down = make_app(MAIL_PORT=str(free_port()))  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="webapp.reports"):
        result = send(down)
    assert result.emails == 0 and len(result.errors) == 2 and not result.ok
    assert "will retry next run" in caplog.text
    assert result.summary().startswith("2 emails could not be sent (first error: ")
    assert result.summary().endswith(" 3 failed deliveries stay due for the next run.")
    logs = failures.logs()
    assert all(not logs[u].reported_at and not logs[u].report_claimed_until for u in uids)
    assert send(app).emails == 2  # the server is back: the next run sends them


def test_an_address_refused_for_good_is_not_retried(app, smtp, failures):
    uids = setup_failures(failures, extra=("nobody@example.org",))
    smtp.refuse = {"nobody@example.org"}
    result = send(app)
    assert result.emails == 1 and "550" in result.errors[0] and result.kept_due == 0
    assert [m.rcpt_tos for m in smtp.messages] == [["alice@example.org"]]
    assert all(failures.logs()[uid].reported_at for uid in uids)
    assert send(app).emails == 0


def test_without_mail_settings_nothing_is_sent_and_it_says_so(make_app, smtp, failures, caplog):
    uids = setup_failures(failures)
    with caplog.at_level(logging.WARNING, logger="webapp.reports"):
        unconfigured = make_app(MAIL_SERVER="")
    assert "Mail is not configured" in caplog.text  # at start-up
    status = mail_status(unconfigured)
    assert status and "MAIL_SERVER" in status
    result = send(unconfigured)
    assert result.not_configured == status and result.emails == 0
    assert smtp.messages == []
    logs = failures.logs()
    assert all(not logs[u].reported_at and not logs[u].report_claimed_until for u in uids)
    outcome = unconfigured.test_cli_runner().invoke(args=["reports", "send"])
    assert outcome.exit_code == 1 and "Email is not configured" in outcome.output
    assert smtp.messages == []


def test_mail_status_is_none_when_configured(app):
    assert mail_status(app) is None


def test_cli_sends_and_says_how_many(app, smtp, failures):
    setup_failures(failures, count=2)
    outcome = app.test_cli_runner().invoke(args=["reports", "send"])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.strip() == "Sent 2 report emails (2 failed deliveries reported)."
    assert len(smtp.messages) == 2
    again = app.test_cli_runner().invoke(args=["reports", "send"])
    assert again.output.strip() == "No new failed deliveries to report; no email sent."
