"""Sending one delivery log: claim, attempt, record, schedule the next try.

The database is the source of truth; Redis only says when to look. Every
state change of a log is a conditional UPDATE, so two workers holding jobs
for the same log never send it at the same time (at-least-once: a worker
killed mid-send leaves a lease that expires, and the log is sent again).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from requests.structures import CaseInsensitiveDict
from sqlalchemy import or_, select, update

from webapp.delivery.http import DeliveryError, HTTPResult, Sender
from webapp.delivery.payloads import PayloadError, build_payload
from webapp.delivery.queue import schedule_delivery
from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, Attempt, DeliveryLog
from webapp.models.base import utcnow

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
# A job may run a little before the time stored in the database (clocks of
# several machines, rq-scheduler's whole-second timestamps).
DUE_TOLERANCE = timedelta(seconds=1)


def lease_seconds() -> float:
    """How long a claim holds: beyond any send bounded by DELIVERY_TIMEOUT."""
    return current_app.config["DELIVERY_TIMEOUT"] * 2 + 5


def get_sender() -> Sender:
    """One Sender (connection pool, SSRF guard) per process and app."""
    sender = current_app.extensions.get("formhooks.sender")
    if sender is None:
        from webapp import __version__

        sender = Sender(
            timeout=current_app.config["DELIVERY_TIMEOUT"],
            allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"],
            user_agent=f"Formhooks/{__version__}",
        )
        current_app.extensions["formhooks.sender"] = sender
    return sender


def claim(log_id: int, now: datetime) -> bool:
    """Take the lease on a pending, due, unleased log. True if this caller got it."""
    result = db.session.execute(
        update(DeliveryLog)
        .where(
            DeliveryLog.id == log_id,
            DeliveryLog.status == PENDING,
            DeliveryLog.next_retry_at <= now + DUE_TOLERANCE,
            or_(DeliveryLog.locked_until.is_(None), DeliveryLog.locked_until < now),
        )
        .values(locked_until=now + timedelta(seconds=lease_seconds()))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return False
    return True


def deliver_log(log_id: int) -> str:
    """Make the next attempt of a log if it is due and nobody else is on it.

    Returns what happened: "skipped" (not due, taken, or finished), "paused"
    (hook disabled), "success", "retry" (next try scheduled) or "failed".
    """
    now = utcnow()
    if not claim(log_id, now):
        return "skipped"
    entry = db.session.get(DeliveryLog, log_id)
    hook, submission = entry.hook, entry.submission
    max_tries = len(current_app.config["RETRY_DELAYS"]) + 1
    if not hook.active:
        entry.locked_until = None
        entry.next_retry_at = None
        entry.message = "Paused: the hook is disabled; this is sent when it is enabled again."
        db.session.commit()
        return "paused"
    _close_interrupted_attempts(entry)
    if entry.tries >= max_tries:
        return _finish(
            entry,
            None,
            ok=False,
            permanent=True,
            status_code=entry.status_code,
            message=entry.message,
        )
    attempt = Attempt(log=entry, number=entry.tries + 1, started_at=now)
    db.session.add(attempt)
    db.session.commit()

    try:
        body, content_type = build_payload(
            source_format=submission.source_format,
            body=submission.body,
            data=submission.data,
            form_uid=hook.form.uid,
            export_type=hook.export_type,
            subset_fields=hook.subset_fields or [],
            payload_template=hook.payload_template,
        )
    except PayloadError as exc:
        return _finish(
            entry,
            attempt,
            ok=False,
            permanent=True,
            status_code=None,
            message=f"Could not build the payload: {exc}",
        )
    headers = CaseInsensitiveDict({"Content-Type": content_type})
    headers.update(hook.custom_headers)
    headers["X-Formhooks-Delivery"] = entry.uid
    try:
        result: HTTPResult = get_sender().post(
            hook.endpoint, body, headers=headers, auth=hook.basic_auth
        )
    except DeliveryError as exc:
        return _finish(
            entry,
            attempt,
            ok=False,
            permanent=exc.permanent,
            status_code=None,
            message=str(exc),
            duration=exc.duration,
        )
    message = result.excerpt if result.ok else f"HTTP {result.status_code}: {result.excerpt}"
    return _finish(
        entry,
        attempt,
        ok=result.ok,
        permanent=False,
        status_code=result.status_code,
        message=message,
        duration=result.duration,
    )


def _close_interrupted_attempts(entry: DeliveryLog) -> None:
    """An attempt left open by a killed worker counts as a failed try."""
    for stale in db.session.scalars(
        select(Attempt).where(Attempt.log_id == entry.id, Attempt.outcome.is_(None))
    ):
        stale.outcome = "error"
        stale.message = (
            "Interrupted: the worker stopped during this attempt; it may have been received."
        )
        entry.tries += 1
        entry.message = stale.message


def _finish(
    entry: DeliveryLog,
    attempt: Attempt | None,
    *,
    ok: bool,
    permanent: bool,
    status_code: int | None,
    message: str,
    duration: float = 0.0,
) -> str:
    """Record the attempt's outcome and decide the log's next state, in one commit."""
    end = utcnow()
    message = message[:MESSAGE_LIMIT]
    if attempt is not None:
        attempt.duration_ms = round(duration * 1000)
        attempt.status_code = status_code
        attempt.outcome = "success" if ok else ("failure" if status_code else "error")
        attempt.message = message
        entry.tries += 1
        entry.last_attempt_at = end
    delays = current_app.config["RETRY_DELAYS"]
    entry.status_code = status_code
    entry.message = message
    entry.locked_until = None
    entry.date_modified = end
    if ok:
        entry.status, entry.next_retry_at, outcome = SUCCESS, None, "success"
    elif permanent or entry.tries > len(delays):
        entry.status, entry.next_retry_at, outcome = FAILED, None, "failed"
    else:
        entry.next_retry_at = end + timedelta(seconds=delays[entry.tries - 1])
        outcome = "retry"
    log_id, tries, when = entry.id, entry.tries, entry.next_retry_at
    db.session.commit()
    if outcome == "retry":
        schedule_delivery(log_id, tries, when)
    return outcome
