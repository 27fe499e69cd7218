"""How far a bulk send went (the panel's progress bar, the API), and the sweeper's care of them.

While a bulk send runs, its counts are read from its logs (one grouped
query on the partial index of `bulk_id`); once finished they are frozen in
its row, so a later manual retry or replay of one of its logs does not
change what it did. `look_after` runs with every sweep: it kicks the fill
job for bulk sends with batches left (a fill job lost with a killed worker,
or Redis restarted), stops the logs a cancel could not reach (in flight at
that moment, then due for a retry), and finishes those with nothing pending.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal_column, or_, select, update

from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, DeliveryLog
from webapp.models.base import utcnow
from webapp.models.bulk import CANCELLED, DONE, RUNNING, BulkSend


def counts(bulk_id: int) -> dict[str, int]:
    """{"succeeded", "failed", "retrying", "waiting"} of a bulk send's logs, now."""
    found = {"succeeded": 0, "failed": 0, "retrying": 0, "waiting": 0}
    tried = DeliveryLog.tries > literal_column("0")  # inline: the same text in GROUP BY
    rows = db.session.execute(
        select(DeliveryLog.status, tried, func.count())
        .where(DeliveryLog.bulk_id == bulk_id)
        .group_by(DeliveryLog.status, tried)
    )
    for status, tried, count in rows:
        if status == SUCCESS:
            found["succeeded"] += count
        elif status == FAILED:
            found["failed"] += count
        else:
            found["retrying" if tried else "waiting"] += count
    return found


def progress(bulk: BulkSend) -> dict[str, Any]:
    """What the panel and the API show of a bulk send (webapp.api.bulk documents the fields).

    `state` is "done" as soon as its last batch is made and none of its logs
    is pending, even before the sweeper records it.
    """
    if bulk.finished_at is not None:
        found = {
            "succeeded": bulk.succeeded or 0,
            "failed": bulk.failed or 0,
            "retrying": 0,
            "waiting": 0,
        }
    else:
        found = counts(bulk.id)
    pending = found["retrying"] + found["waiting"]
    state = bulk.state
    if state == RUNNING and bulk.filled_at is not None and pending == 0:
        state = DONE
    finished = found["succeeded"] + found["failed"]
    return {
        "uid": bulk.uid,
        "kind": bulk.kind,
        "state": state,
        "since": bulk.since,
        "until": bulk.until,
        "statuses": list(bulk.statuses or []),
        "total": bulk.total,
        "created": bulk.created,
        "sent": finished + found["retrying"],
        "succeeded": found["succeeded"],
        "failed": found["failed"],
        "pending": pending,
        # Of the total, how much is finished; 100 once done (some may have been skipped).
        "percent": 100 if state == DONE else min(100, finished * 100 // max(bulk.total, 1)),
        "requested_by": bulk.requested_by,
        "date_created": bulk.date_created,
        "filled_at": bulk.filled_at,
        "cancelled_at": bulk.cancelled_at,
        "finished_at": bulk.finished_at,
    }


def finish_if_settled(bulk_id: int, now: datetime | None = None) -> bool:
    """Record a bulk send as finished (done, or cancelled) once none of its logs is pending.

    Freezes its counts; commits. False while something is left (or it runs
    with batches still to make).
    """
    now = now or utcnow()
    pending = (
        select(func.count())
        .where(DeliveryLog.bulk_id == bulk_id, DeliveryLog.status == PENDING)
        .scalar_subquery()
    )
    done = db.session.execute(
        update(BulkSend)
        .where(
            BulkSend.id == bulk_id,
            BulkSend.finished_at.is_(None),
            or_(BulkSend.state == CANCELLED, BulkSend.filled_at.is_not(None)),
            pending == 0,
        )
        .values(state=_final_state(), finished_at=now, date_modified=now, **_frozen(bulk_id))
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return bool(done)


def _final_state():
    return case((BulkSend.state == RUNNING, DONE), else_=BulkSend.state)


def _frozen(bulk_id: int) -> dict[str, Any]:
    def count(status: str):
        return (
            select(func.count())
            .where(DeliveryLog.bulk_id == bulk_id, DeliveryLog.status == status)
            .scalar_subquery()
        )

    return {"succeeded": count(SUCCESS), "failed": count(FAILED)}


def look_after(now: datetime | None = None) -> None:
    """The sweeper's round of the unfinished bulk sends (see the module's docstring)."""
    from webapp.bulk.cancel import stop_stragglers
    from webapp.bulk.fill import kick

    now = now or utcnow()
    rows = db.session.execute(
        select(BulkSend.id, BulkSend.kind, BulkSend.state, BulkSend.filled_at).where(
            BulkSend.finished_at.is_(None)
        )
    ).all()
    db.session.rollback()
    unfilled = False
    for row in rows:
        if row.state == CANCELLED:
            stop_stragglers(row.id, row.kind, now)
        elif row.filled_at is None:
            unfilled = True
            continue
        finish_if_settled(row.id, now)
    if unfilled:
        kick()
