"""The sweeper: the database, not Redis, decides what still has to be sent.

A pending log whose next try is overdue and that no worker holds is pushed
to the feed again unless Redis already has it (in the feed, or as a queued
or scheduled retry job). That covers a
Redis restarted empty, an enqueue lost after commit, and a worker killed
mid-send (its lease expires). Sending twice is prevented by the claim in
`claims.prepare`, so an extra job costs nothing but a skipped run.

Each lane is swept on its own (the logs of backfills and replays, with
`bulk_id`, go back to the bulk lane), so a backfill waiting in its lane
never hides a lost live delivery from the sweeper.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import or_, select

from webapp.delivery import feed
from webapp.delivery.queue import job_id, redis_connection
from webapp.extensions import db
from webapp.models import PENDING, DeliveryLog
from webapp.models.base import utcnow

log = logging.getLogger(__name__)

# Between a commit and its enqueue there are milliseconds; leave room.
GRACE = timedelta(seconds=2)
BATCH = 1000
ON_ITS_WAY = {"queued", "scheduled", "deferred"}


def sweep_due_logs(now: datetime | None = None) -> int:
    """Queue overdue, unleased pending logs with no live job. Returns how many."""
    now = now or utcnow()
    return _sweep_lane(now, bulk=False) + _sweep_lane(now, bulk=True)


def _sweep_lane(now: datetime, *, bulk: bool) -> int:
    rows = db.session.execute(
        select(DeliveryLog.id, DeliveryLog.tries)
        .where(
            DeliveryLog.status == PENDING,
            DeliveryLog.next_retry_at <= now - GRACE,
            or_(DeliveryLog.locked_until.is_(None), DeliveryLog.locked_until < now),
            DeliveryLog.bulk_id.is_not(None) if bulk else DeliveryLog.bulk_id.is_(None),
        )
        .order_by(DeliveryLog.next_retry_at)
        .limit(BATCH)
    ).all()
    db.session.rollback()
    if not rows:
        return 0
    connection = redis_connection()
    try:
        with connection.pipeline(transaction=False) as pipe:
            for log_id, tries in rows:
                pipe.hget(Job.key_for(job_id(log_id, tries)), "status")
            statuses = pipe.execute()
        queued = feed.in_feed([log_id for log_id, _ in rows], connection, bulk=bulk)
        feed.kick(connection)  # a drain job lost with the feed non-empty
    except RedisError as exc:
        log.warning("Sweeper cannot reach Redis: %s", exc)
        return 0
    lost = [
        log_id
        for (log_id, _), status, in_feed in zip(rows, statuses, queued, strict=True)
        if not in_feed and (status.decode() if status else None) not in ON_ITS_WAY
    ]
    if lost and feed.push(lost, connection=connection, bulk=bulk):
        feed.enqueue_drain(connection)  # do not wait for a kick left by a dead drainer
        log.info("Sweeper queued %d overdue %sdeliveries", len(lost), "bulk " if bulk else "")
        return len(lost)
    return 0
