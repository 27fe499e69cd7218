"""Cancelling a bulk send: no more batches, and nothing more sent of what it made.

What happens to its pending logs (docs/backfill.md, "Cancel"):

- never attempted by it: a backfill's log is deleted (as if never made, so
  a later backfill can make it again); a replayed log goes back to what it
  was before the replay (status, tries, code and message of its last
  attempt, no bulk send);
- attempted and waiting for a retry: failed, with a message saying so, and
  counted as reported (a cancel is a person's choice, not a failure to email);
- being sent at that moment: the attempt ends and is recorded; should it
  need a retry, the claim of that retry stops it as above (`stop_cancelled`).
  So does a log whose worker died while sending it: its next claim closes
  that attempt as interrupted, then stops it as attempted.

So after a cancel no log of it starts a new attempt. A log it sent keeps its
history.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import case, delete, func, select, update

from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, Attempt, DeliveryLog
from webapp.models.base import utcnow
from webapp.models.bulk import BACKFILL, CANCELLED, RUNNING, BulkSend

STOPPED = "Cancelled: its backfill or replay was cancelled before this was sent again."


def cancel(bulk: BulkSend, now: datetime | None = None) -> bool:
    """Cancel a running bulk send and stop its unsent logs; commits. False if not running.

    Taking the row waits for a batch being made at that moment, so that
    batch's logs are stopped too.
    """
    now = now or utcnow()
    cancelled = db.session.execute(
        update(BulkSend)
        .where(BulkSend.id == bulk.id, BulkSend.state == RUNNING)
        .values(state=CANCELLED, cancelled_at=now, date_modified=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not cancelled:
        db.session.rollback()
        return False
    stopped = _stop_unclaimed(bulk.id, bulk.kind, now)
    db.session.commit()
    _forget_in_redis(*stopped)
    from webapp.bulk.progress import finish_if_settled

    finish_if_settled(bulk.id, now)  # at once, unless logs are being sent right now
    return True


def stop_stragglers(bulk_id: int, kind: str, now: datetime | None = None) -> None:
    """Stop what a cancelled bulk send still has pending and unclaimed; commits.

    The sweeper's round (progress.look_after): logs that were being sent
    when it was cancelled and then waited for a retry.
    """
    stopped = _stop_unclaimed(bulk_id, kind, now or utcnow())
    db.session.commit()
    _forget_in_redis(*stopped)


def _stop_unclaimed(bulk_id: int, kind: str, now: datetime):
    # Not leased. A log whose lease expired (its worker died mid-send) may have
    # reached the endpoint: it is left to the claim that closes its attempt as
    # interrupted, and then stops it as attempted (stop_cancelled).
    free = DeliveryLog.locked_until.is_(None)
    rows = db.session.execute(
        select(DeliveryLog.id, DeliveryLog.tries).where(
            DeliveryLog.bulk_id == bulk_id, DeliveryLog.status == PENDING, free
        )
    ).all()
    never = [row.id for row in rows if row.tries == 0]
    retrying = [(row.id, row.tries) for row in rows if row.tries > 0]
    # Conditional: a log a worker claimed since the read is being sent; left to it.
    retrying_ids = [log_id for log_id, _ in retrying]
    _stop(kind, never, retrying_ids, now, DeliveryLog.status == PENDING, free)
    return never, retrying


def stop_cancelled(rows: Sequence[Any], tries: dict[int, int], now: datetime) -> set[int]:
    """Of logs just claimed (`rows`: id, bulk_id), stop those of a cancelled bulk send.

    Called by webapp.delivery.claims.prepare in its transaction, with the
    tries each log has made: returns the ids stopped, not to be sent.
    """
    if not rows:
        return set()
    kinds = dict(
        db.session.execute(
            select(BulkSend.id, BulkSend.kind).where(
                BulkSend.id.in_({row.bulk_id for row in rows}), BulkSend.state == CANCELLED
            )
        ).all()
    )
    stopped = [row for row in rows if row.bulk_id in kinds]
    for kind in set(kinds.values()):
        mine = [row.id for row in stopped if kinds[row.bulk_id] == kind]
        _stop(
            kind,
            [log_id for log_id in mine if tries[log_id] == 0],
            [log_id for log_id in mine if tries[log_id] > 0],
            now,
        )
    return {row.id for row in stopped}


def _stop(kind: str, never: list[int], retrying: list[int], now: datetime, *conditions) -> None:
    if never and kind == BACKFILL:
        db.session.execute(
            delete(DeliveryLog)
            .where(DeliveryLog.id.in_(never), *conditions)
            .execution_options(synchronize_session=False)
        )
    elif never:
        _restore(never, now, *conditions)
    if retrying:
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id.in_(retrying), *conditions)
            .values(
                status=FAILED,
                next_retry_at=None,
                locked_until=None,
                reported_at=now,
                message=STOPPED,
                date_modified=now,
            )
            .execution_options(synchronize_session=False)
        )


def _restore(log_ids: list[int], now: datetime, *conditions) -> None:
    """Replayed logs not sent again: back to their last attempt's outcome, out of the replay.

    A finished log's status, tries, code and message are those of its last
    attempt (webapp.delivery.claims.record writes them together), so they
    are read back from it; a log without attempts was failed.
    """

    def last(column):
        return (
            select(column)
            .where(Attempt.log_id == DeliveryLog.id)
            .order_by(Attempt.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    db.session.execute(
        update(DeliveryLog)
        .where(DeliveryLog.id.in_(log_ids), *conditions)
        .values(
            status=case((last(Attempt.outcome) == "success", SUCCESS), else_=FAILED),
            tries=func.coalesce(last(Attempt.number), 0),
            status_code=last(Attempt.status_code),
            message=func.coalesce(last(Attempt.message), ""),
            next_retry_at=None,
            locked_until=None,
            bulk_id=None,
            date_modified=now,
        )
        .execution_options(synchronize_session=False)
    )


def _forget_in_redis(never: list[int], retrying: list[tuple[int, int]]) -> None:
    """Drop the stopped logs' ids from the bulk lane and their scheduled retries (tidiness:
    a claim would skip them anyway)."""
    from webapp.delivery import feed
    from webapp.delivery.queue import job_id, redis_connection, scheduler

    with contextlib.suppress(RedisError):
        ids = never + [log_id for log_id, _ in retrying]
        if ids:
            redis_connection().zrem(feed.BULK_FEED_KEY, *[str(i) for i in ids])
        retries = scheduler()
        for log_id, tries in retrying:
            retries.cancel(job_id(log_id, tries))
