"""LOG_RETENTION_DAYS: deleting the attempts of deliveries finished long ago.

The attempts (one row per HTTP try: time, duration, status code, message)
of a delivery log that is finished (success or failed) and was last
changed before the cutoff are deleted. The log stays, with its status, its
number of tries, its last status code and message, so the logs pages and
the counts are unchanged; its detail page no longer lists the tries.
Attempts of pending logs, and of logs retried since, are kept.

Each batch reads the next `batch_size` attempts in id order (the primary
key: ids grow with time), deletes those of old finished logs (locked and
checked again first, so a log retried meanwhile keeps them), and the run
stops at the first batch that ends on an attempt younger than the cutoff:
no later one can belong to a log finished before it.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import delete, select

from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, Attempt, DeliveryLog
from webapp.retention.runs import Counts, Progress, in_ids

FINISHED = (SUCCESS, FAILED)


def delete_old_attempts(progress: Progress, cutoff: datetime, batch_size: int, cap) -> bool:
    """Delete the attempts of logs finished before `cutoff`. False if it stopped at `cap`."""
    after = 0
    while True:
        if progress.counts.attempts_deleted >= cap:
            return False
        after = progress.batch(partial(_batch, cutoff, after, batch_size))
        if after is None:
            return True


def _batch(cutoff: datetime, after: int, size: int):
    rows = db.session.execute(
        select(
            Attempt.id,
            Attempt.log_id,
            Attempt.started_at,
            DeliveryLog.status,
            DeliveryLog.date_modified,
        )
        .join(DeliveryLog, DeliveryLog.id == Attempt.log_id)
        .where(Attempt.id > after)
        .order_by(Attempt.id)
        .limit(size)
    ).all()
    if not rows:
        return None
    old = [row for row in rows if row.status != PENDING and row.date_modified < cutoff]
    counts = Counts()
    if old:
        # The logs again, locked until the commit: one retried meanwhile (or
        # being changed now: skipped) keeps its attempts.
        still_old = set(
            db.session.scalars(
                select(DeliveryLog.id)
                .where(
                    in_ids(DeliveryLog.id, {row.log_id for row in old}),
                    DeliveryLog.status.in_(FINISHED),
                    DeliveryLog.date_modified < cutoff,
                )
                .with_for_update(read=True, skip_locked=True)
            )
        )
        doomed = [row.id for row in old if row.log_id in still_old]
        if doomed:
            counts.attempts_deleted = db.session.execute(
                delete(Attempt)
                .where(in_ids(Attempt.id, doomed))
                .execution_options(synchronize_session=False)
            ).rowcount
    last = rows[-1]
    done = len(rows) < size or last.started_at >= cutoff
    return counts, None if done else last.id
