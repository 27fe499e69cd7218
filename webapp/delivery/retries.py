"""Manual retries, as the admin panel and the API call them.

A manual retry starts a fresh series: tries back to 0, due now, and the
failure can be reported again if the new series fails too. A log retried by
hand is a live delivery again: it leaves the backfill or replay that made
it (docs/backfill.md). Enabling a hook sends what it parked, each log in
its own lane.
"""

from __future__ import annotations

from sqlalchemy import update

from webapp.delivery import feed
from webapp.extensions import db
from webapp.models import FAILED, PENDING, DeliveryLog, Hook
from webapp.models.base import utcnow


def _restart(*conditions, **values) -> list[int]:
    now = utcnow()
    rows = db.session.execute(
        update(DeliveryLog)
        .where(*conditions)
        .values(
            status=PENDING,
            tries=0,
            next_retry_at=now,
            locked_until=None,
            reported_at=None,
            date_modified=now,
            message="Retry requested; waiting for a worker.",
            **values,
        )
        .returning(DeliveryLog.id, DeliveryLog.bulk_id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    ids = [log_id for log_id, _ in rows]
    feed.push_lanes(ids, {log_id for log_id, bulk_id in rows if bulk_id is not None})
    return ids


def retry_log(entry: DeliveryLog) -> bool:
    """Retry one failed log. False if it is not failed (nothing changed)."""
    return bool(_restart(DeliveryLog.id == entry.id, DeliveryLog.status == FAILED, bulk_id=None))


def retry_failed(hook: Hook) -> int:
    """Retry every failed log of a hook. Returns how many."""
    return len(_restart(DeliveryLog.hook_id == hook.id, DeliveryLog.status == FAILED, bulk_id=None))


def resume_paused(hook: Hook) -> int:
    """Queue the logs parked while the hook was disabled (call when enabling it)."""
    return len(
        _restart(
            DeliveryLog.hook_id == hook.id,
            DeliveryLog.status == PENDING,
            DeliveryLog.next_retry_at.is_(None),
        )
    )
