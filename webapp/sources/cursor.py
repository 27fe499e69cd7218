"""A source's poll state in the database: the lease, the cursors, the outcome.

Two workers never poll one source at once: a poll starts by claiming the
source with one conditional UPDATE (due, active, and not leased, or leased
by a poller whose lease ran out), as webapp.delivery's engine claims logs.
Every later write is conditional on still holding the lease (`LeaseLost`
otherwise) and renews it, so a poller killed mid-page is replaced once its
lease expires, and a poller that lost its lease writes nothing more.

The cursors only move forward, and only after what they cover is stored.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, update

from webapp.extensions import db
from webapp.models import Source
from webapp.models.base import secret_box, utcnow
from webapp.models.sources import SOURCE_ERROR, SOURCE_OK

# Long enough for the slowest request (connect + read timeouts) between two renewals.
LEASE = timedelta(seconds=180)
# The longest wait after repeated failures (the wait doubles from one interval).
MAX_BACKOFF = timedelta(minutes=15)


class LeaseLost(Exception):  # noqa: N818 (a state, not an error of ours)
    """Another poller holds the source now (ours expired): stop without writing."""


def claim(source_id: int, now: datetime, tolerance: timedelta) -> str | None:
    """Lease the source if it is active, due (within `tolerance`) and free. Returns the owner."""
    owner = secrets.token_hex(8)
    result = db.session.execute(
        update(Source)
        .where(
            Source.id == source_id,
            Source.active.is_(True),
            Source.next_poll_at <= now + tolerance,
            or_(Source.leased_until.is_(None), Source.leased_until < now),
        )
        .values(lease_owner=owner, leased_until=now + LEASE, date_modified=Source.date_modified)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return owner if result.rowcount == 1 else None


def _held(source_id: int, owner: str, **values) -> None:
    now = utcnow()
    result = db.session.execute(
        update(Source)
        .where(Source.id == source_id, Source.lease_owner == owner, Source.leased_until >= now)
        .values(leased_until=now + LEASE, date_modified=Source.date_modified, **values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if result.rowcount != 1:
        raise LeaseLost(f"source {source_id}: lease lost")


def renew(source_id: int, owner: str, received: int = 0) -> None:
    """Keep the lease, and count `received` more stored submissions."""
    _held(source_id, owner, received_count=Source.received_count + received)


def move(source_id: int, owner: str, **cursors: datetime) -> None:
    """Move `created_cursor` and/or `updated_cursor` (callers never move them back)."""
    _held(source_id, owner, **cursors)


def cache_token(source_id: int, owner: str, token: str | None, now: datetime) -> None:
    """Keep Central's session token (encrypted) for the next polls, or forget it."""
    _held(
        source_id,
        owner,
        session_token_encrypted=secret_box().encrypt(token) if token else None,
        session_expires_at=now + timedelta(hours=23) if token else None,
    )


def finish_ok(
    source_id: int,
    owner: str,
    *,
    polled_at: datetime,
    next_poll_at: datetime,
    note: tuple[str, str] | None = None,
) -> None:
    """Release the lease after a good poll; `note` is a skipped submission to tell about."""
    code, message = note if note else (None, None)
    db.session.execute(
        update(Source)
        .where(Source.id == source_id, Source.lease_owner == owner)
        .values(
            lease_owner=None,
            leased_until=None,
            status=SOURCE_OK,
            error_code=code,
            last_error=message,
            error_since=None,
            error_reported_at=None,
            failures=0,
            last_polled_at=polled_at,
            next_poll_at=next_poll_at,
            date_modified=Source.date_modified,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def finish_error(
    source_id: int,
    owner: str,
    *,
    code: str,
    message: str,
    now: datetime,
    interval: int,
    fingerprint: tuple,
) -> None:
    """Release the lease after a failed poll: status error, next try after a backoff.

    If the settings changed meanwhile (`fingerprint` differs), the error may
    be fixed already: no error is recorded and the next poll is due now.
    """
    db.session.rollback()
    source = db.session.get(Source, source_id)
    if source is None or source.lease_owner != owner:
        return
    if settings_fingerprint(source) != fingerprint:
        source.lease_owner, source.leased_until, source.next_poll_at = None, None, now
        db.session.commit()
        return
    failures = source.failures + 1
    delay = min(timedelta(seconds=interval) * 2 ** (failures - 1), MAX_BACKOFF)
    if source.status != SOURCE_ERROR or source.error_code != code:
        source.error_since = now
        source.error_reported_at = None
    source.status = SOURCE_ERROR
    source.error_code = code
    source.last_error = message
    source.failures = failures
    source.last_polled_at = now
    source.next_poll_at = now + max(delay, timedelta(seconds=interval))
    source.lease_owner = None
    source.leased_until = None
    if code == "login":
        source.session_token_encrypted = None
        source.session_expires_at = None
    db.session.commit()


def release(source_id: int, owner: str, next_poll_at: datetime) -> None:
    """Give the lease back without judging the poll (an unexpected error, a new budget)."""
    db.session.rollback()
    db.session.execute(
        update(Source)
        .where(Source.id == source_id, Source.lease_owner == owner)
        .values(
            lease_owner=None,
            leased_until=None,
            next_poll_at=next_poll_at,
            date_modified=Source.date_modified,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def settings_fingerprint(source: Source) -> tuple:
    """What the poll depends on; a change means a person may have fixed something."""
    return (
        source.url,
        source.project_id,
        source.xml_form_id,
        source.email,
        source.password_encrypted,
        source.active,
    )
