"""Sources in error in the failure digest: claim, load, mark (docs/reports.md).

A form's source (ODK Central, docs/central.md) whose polls fail is in error
from `error_since`; that error is reported once, to the form owner, in the
same digest as the failed deliveries and by the same rule ("Once and only
once"): a run leases the due errors (`error_report_claimed_until`), sends,
then marks `error_reported_at` on those still in the same error, and
releases the rest. A new error (another cause, or an error after a good
poll) clears `error_reported_at` (webapp.sources.cursor) and is due again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from webapp.extensions import db
from webapp.models import Form, Source, User
from webapp.models.base import utcnow
from webapp.models.sources import SOURCE_ERROR
from webapp.reports.digest import SourceFailure


def _due(now: datetime) -> list:
    """An active source in error, its error not reported, nobody's lease on it."""
    return [
        Source.active.is_(True),
        Source.status == SOURCE_ERROR,
        Source.error_reported_at.is_(None),
        or_(
            Source.error_report_claimed_until.is_(None),
            Source.error_report_claimed_until < now,
        ),
    ]


def claim_due_sources(now: datetime, lease: datetime) -> list[int]:
    """Lease every due source error to this run until `lease`; returns the ids this run got."""
    db.session.commit()  # a fresh transaction (see sending.claim_due)
    ids = list(
        db.session.scalars(
            update(Source)
            .where(*_due(now))
            .values(error_report_claimed_until=lease, date_modified=Source.date_modified)
            .returning(Source.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    return sorted(ids)


def load_source_failures(ids: list[int]) -> list[SourceFailure]:
    """The claimed sources with their form and owner, as SourceFailure records."""
    if not ids:
        return []
    rows = db.session.execute(
        select(Source, Form, User)
        .join(Form, Source.form_id == Form.id)
        .join(User, Form.owner_id == User.id)
        .where(Source.id.in_(ids))
    ).all()
    found = [
        SourceFailure(
            source_id=source.id,
            form_uid=form.uid,
            form_name=form.name,
            url=source.url,
            project_id=source.project_id,
            xml_form_id=source.xml_form_id,
            code=source.error_code or "",
            message=source.last_error or "",
            since=source.error_since,
            owner_email=owner.email,
            owner_wants_reports=bool(owner.report_opt_in and owner.is_active),
        )
        for source, form, owner in rows
    ]
    db.session.rollback()  # read only; end the transaction before sending
    return found


def mark_sources_reported(ids: list[int], now: datetime, lease: datetime) -> int:
    """Set error_reported_at on sources held by this lease and still in the error claimed.

    An error that began after `now` (the source recovered and failed again) is
    left for a later run. Returns how many were marked.
    """
    if not ids:
        return 0
    outcome = db.session.execute(
        update(Source)
        .where(
            Source.id.in_(ids),
            Source.error_report_claimed_until == lease,
            Source.status == SOURCE_ERROR,
            Source.error_reported_at.is_(None),
            Source.error_since <= now,
        )
        .values(
            error_reported_at=utcnow(),
            error_report_claimed_until=None,
            date_modified=Source.date_modified,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return outcome.rowcount


def release_sources(ids: list[int], lease: datetime) -> None:
    """Drop this run's lease on the sources it still holds: they are due again."""
    if not ids:
        return
    db.session.execute(
        update(Source)
        .where(Source.id.in_(ids), Source.error_report_claimed_until == lease)
        .values(error_report_claimed_until=None, date_modified=Source.date_modified)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
