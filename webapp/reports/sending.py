"""Send the failure digests that are due now: claim, send, mark (docs/reports.md).

`send_reports()` is the one function behind `flask reports send`, the
periodic RQ job and the admin's "send the report now".

Each failure is reported once (docs/reports.md, "Once and only once"):

1. Claim: one conditional UPDATE gives this run a lease
   (`report_claimed_until = now + LEASE`) on every due log that nobody else
   holds, and returns their ids. A concurrent run's UPDATE skips rows leased
   by another, so two runs never email the same failure.
2. Send one digest per recipient.
3. Mark `reported_at` on the logs whose every digest was sent, and release
   (clear the lease of) the others: they are due again at the next run.

Sources in error (ODK Central, webapp.reports.source_errors) are claimed,
sent in the same digests and marked the same way.

A run that dies between 1 and 3 leaves its lease; when it expires the next
run sends those failures again. A crash may resend; it never loses one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from webapp.extensions import db
from webapp.models import FAILED, DeliveryLog, Form, Hook, Submission, User
from webapp.models.base import utcnow
from webapp.reports.digest import Digest, Failure, build_digests, normalize_address
from webapp.reports.i18n import _, ngettext
from webapp.reports.mailer import (
    SEND_ERRORS,
    describe,
    is_permanent,
    mail_status,
    smtp_session,
)
from webapp.reports.render import base_url, report_message
from webapp.reports.source_errors import (
    claim_due_sources,
    load_source_failures,
    mark_sources_reported,
    release_sources,
)

log = logging.getLogger(__name__)

#: How long a run holds its claim. A run that has not finished by then is
#: presumed dead, and the next run sends its failures again.
LEASE = timedelta(minutes=10)
_CHUNK = 500  # ids per IN (...) list


@dataclass
class ReportResult:
    """What a run did. `not_configured` is set (and nothing done) without mail settings."""

    emails: int = 0  # digests sent
    reported: int = 0  # failed deliveries now marked as reported
    unaddressed: int = 0  # of which had nobody to tell (owner opted out, no extra address)
    errors: list[str] = field(default_factory=list)  # one per digest not sent
    kept_due: int = 0  # failed deliveries released for the next run after a send error
    source_errors: int = 0  # sources in error now marked as reported
    not_configured: str | None = None

    @property
    def ok(self) -> bool:
        return self.not_configured is None and not self.errors

    def as_dict(self) -> dict:
        return {
            "emails": self.emails,
            "reported": self.reported,
            "unaddressed": self.unaddressed,
            "errors": list(self.errors),
            "kept_due": self.kept_due,
            "source_errors": self.source_errors,
            "not_configured": self.not_configured,
        }

    def summary(self) -> str:
        """One human sentence for the CLI, the job log and the admin's flash message."""
        if self.not_configured:
            return self.not_configured
        if not self.emails and not self.errors:
            if self.reported or self.source_errors:
                return ngettext(
                    "%(num)d failed delivery had nobody to report to; no email sent.",
                    "%(num)d failed deliveries had nobody to report to; no email sent.",
                    self.reported,
                )
            return _("No new failed deliveries to report; no email sent.")
        parts = []
        if self.emails:
            parts.append(
                ngettext(
                    "Sent %(num)d report email (%(failures)s reported).",
                    "Sent %(num)d report emails (%(failures)s reported).",
                    self.emails,
                    failures=ngettext(
                        "%(num)d failed delivery", "%(num)d failed deliveries", self.reported
                    ),
                )
            )
        if self.source_errors:
            parts.append(
                ngettext(
                    "%(num)d source error reported.",
                    "%(num)d source errors reported.",
                    self.source_errors,
                )
            )
        if self.errors:
            parts.append(
                ngettext(
                    "%(num)d email could not be sent (%(error)s).",
                    "%(num)d emails could not be sent (first error: %(error)s).",
                    len(self.errors),
                    error=self.errors[0],
                )
            )
        if self.kept_due:
            parts.append(
                ngettext(
                    "%(num)d failed delivery stays due for the next run.",
                    "%(num)d failed deliveries stay due for the next run.",
                    self.kept_due,
                )
            )
        return " ".join(parts)


def send_reports(now: datetime | None = None) -> ReportResult:
    """Email every failure digest due at `now` (default: now). See the module doc.

    Send errors are logged and counted, never raised: those failures stay due.
    Any other exception propagates and leaves this run's lease to expire.
    """
    status = mail_status(current_app)
    if status is not None:
        log.info("Failure reports not sent: %s", status)
        return ReportResult(not_configured=status)
    now = now or utcnow()
    lease = now + LEASE
    claimed = claim_due(now, lease)
    sources = claim_due_sources(now, lease)
    if not claimed and not sources:
        return ReportResult()
    try:
        return _send_claimed(claimed, sources, now, lease)
    except Exception:
        db.session.rollback()
        log.exception(
            "Failure report run stopped; its %d claimed failures and %d source errors will be "
            "reported by a run after %s",
            len(claimed),
            len(sources),
            lease.isoformat(),
        )
        raise


def _send_claimed(
    claimed: list[int], sources: list[int], now: datetime, lease: datetime
) -> ReportResult:
    result = ReportResult()
    digests, unaddressed = build_digests(
        load_failures(claimed), base_url()[0], load_source_failures(sources)
    )
    languages = _languages(digests)
    unsent: set[int] = set()
    unsent_sources: set[int] = set()
    with smtp_session() as send:
        for digest in digests:
            try:
                send(report_message(digest, languages.get(digest.recipient)))
            except SEND_ERRORS as exc:
                error = f"{digest.recipient}: {describe(exc)}"
                result.errors.append(error)
                if is_permanent(exc):
                    log.warning("Failure report refused for good, not retried: %s", error)
                    continue
                log.warning("Failure report not sent, will retry next run: %s", error)
                unsent |= digest.log_ids
                unsent_sources |= digest.source_ids
                continue
            result.emails += 1
    done = [log_id for log_id in claimed if log_id not in unsent]
    result.reported = mark_reported(done, now, lease)
    result.unaddressed = len(unaddressed)
    result.kept_due = len(unsent)
    release(claimed, lease)
    told = [source_id for source_id in sources if source_id not in unsent_sources]
    result.source_errors = mark_sources_reported(told, now, lease)
    release_sources(sources, lease)
    log.info("Failure reports: %s", result.summary())
    return result


def _due(now: datetime) -> list:
    """A failed log, not reported, nobody's lease on it, of a hook that sends reports."""
    return [
        DeliveryLog.status == FAILED,
        DeliveryLog.reported_at.is_(None),
        or_(DeliveryLog.report_claimed_until.is_(None), DeliveryLog.report_claimed_until < now),
        DeliveryLog.hook_id.in_(select(Hook.id).where(Hook.email_notification.is_(True))),
    ]


def claim_due(now: datetime, lease: datetime) -> list[int]:
    """Lease every due log to this run until `lease`; returns the ids this run got.

    One conditional UPDATE ... RETURNING: a row leased by a concurrent run no
    longer matches (PostgreSQL re-checks the condition on the row it waited
    for; SQLite runs one writer at a time), so each id goes to one run only.
    """
    # Start a fresh transaction: on SQLite a write after a read of an old
    # snapshot fails at once instead of waiting for the other writer.
    db.session.commit()
    ids = list(
        db.session.scalars(
            update(DeliveryLog)
            .where(*_due(now))
            .values(report_claimed_until=lease)
            .returning(DeliveryLog.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return sorted(ids)


def load_failures(ids: list[int]) -> list[Failure]:
    """The claimed logs with their submission, hook, form and owner, as Failure records."""
    failures = []
    for chunk in _chunks(ids):
        rows = db.session.execute(
            select(DeliveryLog, Submission.instance_id, Hook, Form, User)
            .join(Submission, DeliveryLog.submission_id == Submission.id)
            .join(Hook, DeliveryLog.hook_id == Hook.id)
            .join(Form, Hook.form_id == Form.id)
            .join(User, Form.owner_id == User.id)
            .where(DeliveryLog.id.in_(chunk))
        ).all()
        failures += [_failure(*row) for row in rows]
    db.session.rollback()  # read only; end the transaction before sending
    return failures


def _failure(entry: DeliveryLog, instance_id: str, hook: Hook, form: Form, owner: User) -> Failure:
    return Failure(
        log_id=entry.id,
        log_uid=entry.uid,
        instance_id=instance_id,
        status_code=entry.status_code,
        message=entry.message or "",
        failed_at=entry.last_attempt_at or entry.date_modified,
        hook_uid=hook.uid,
        hook_name=hook.name,
        notification_emails=tuple(hook.notification_emails or ()),
        form_uid=form.uid,
        form_name=form.name,
        owner_email=owner.email,
        owner_wants_reports=bool(owner.report_opt_in and owner.is_active),
    )


def _languages(digests: list[Digest]) -> dict[str, str | None]:
    """The preferred language of each recipient that is a user (None: the default)."""
    addresses = [d.recipient for d in digests]
    found: dict[str, str | None] = {}
    for chunk in _chunks(addresses):
        for email, language in db.session.execute(
            select(User.email, User.language).where(User.email.in_(chunk))
        ):
            found[normalize_address(email)] = language
    db.session.rollback()
    return found


def mark_reported(ids: list[int], now: datetime, lease: datetime) -> int:
    """Set reported_at on logs still held by this lease and unchanged since the claim.

    A log retried by hand and failed again after `now` is left alone: its new
    failure is reported by a later run. Returns how many were marked.
    """
    marked = 0
    for chunk in _chunks(ids):
        outcome = db.session.execute(
            update(DeliveryLog)
            .where(
                DeliveryLog.id.in_(chunk),
                DeliveryLog.report_claimed_until == lease,
                DeliveryLog.status == FAILED,
                DeliveryLog.reported_at.is_(None),
                or_(DeliveryLog.last_attempt_at.is_(None), DeliveryLog.last_attempt_at <= now),
            )
            .values(reported_at=utcnow(), report_claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        marked += outcome.rowcount
    db.session.commit()
    return marked


def release(ids: list[int], lease: datetime) -> None:
    """Drop this run's lease on whatever it still holds: those logs are due again."""
    for chunk in _chunks(ids):
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id.in_(chunk), DeliveryLog.report_claimed_until == lease)
            .values(report_claimed_until=None)
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def _chunks(items: Iterable, size: int = _CHUNK) -> Iterator[list]:
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]
