"""Manual retries, as the admin panel and the API call them.

A manual retry starts a fresh series: tries back to 0, due now, and the
failure can be reported again if the new series fails too.
"""

from __future__ import annotations

from sqlalchemy import update

from webapp.delivery import feed
from webapp.extensions import db
from webapp.models import FAILED, PENDING, DeliveryLog, Hook
from webapp.models.base import utcnow


def _restart(*conditions) -> list[int]:
    now = utcnow()
    ids = list(
        db.session.scalars(
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
            )
            .returning(DeliveryLog.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    feed.push(ids)
    return ids


def retry_log(entry: DeliveryLog) -> bool:
    """Retry one failed log. False if it is not failed (nothing changed)."""
    return bool(_restart(DeliveryLog.id == entry.id, DeliveryLog.status == FAILED))


def retry_failed(hook: Hook) -> int:
    """Retry every failed log of a hook. Returns how many."""
    return len(_restart(DeliveryLog.hook_id == hook.id, DeliveryLog.status == FAILED))


def resume_paused(hook: Hook) -> int:
    """Queue the logs parked while the hook was disabled (call when enabling it)."""
    return len(
        _restart(
            DeliveryLog.hook_id == hook.id,
            DeliveryLog.status == PENDING,
            DeliveryLog.next_retry_at.is_(None),
        )
    )
