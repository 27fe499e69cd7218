"""The fill job: make the next batches of the running bulk sends while their lane runs low.

Logs of a backfill are not made all at once: the lane of bulk logs in the
feed holds about two batches (BULK_BATCH_SIZE logs each), and a drainer
that takes from it while it holds less than one batch kicks this job. So a
backfill of a million submissions holds a bounded number of pending logs
at any time, a cancel has little to undo, and when live deliveries keep the
workers busy, no log of it is even made (the lane is not drained).

The kick is a Redis key (like the drain job's): one fill job queued at a
time. The job clears it first, so a kick while it runs queues the next one.
A job lost with a killed worker leaves the key to expire (FILL_KICK_TTL);
the sweeper kicks again while a bulk send is unfilled (progress.look_after).
"""

from __future__ import annotations

import logging
import time

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import select

from webapp.bulk.batches import next_batch
from webapp.delivery import feed
from webapp.delivery.queue import QUEUE_NAME, redis_connection
from webapp.extensions import db
from webapp.models.bulk import RUNNING, BulkSend

log = logging.getLogger(__name__)

FILL_KICK_KEY = "formhooks:bulk:kick"
FILL_KICK_TTL = 10  # seconds: a fill job lost delays the backfill at most this (plus a sweep)
FILL_FUNC = "webapp.delivery.jobs.fill_bulk"
FILL_BUDGET = 1.0  # seconds a fill job makes batches before giving the worker back to RQ


def batch_size() -> int:
    """Logs made per batch (one transaction each): BULK_BATCH_SIZE."""
    return current_app.config["BULK_BATCH_SIZE"]


def low_water() -> int:
    """A drainer kicks the fill job when the bulk lane holds fewer ids than this."""
    return batch_size()


def kick(connection: Redis | None = None) -> bool:
    """Queue a fill job unless one is queued. False if Redis refused (the sweeper kicks)."""
    conn = connection if connection is not None else redis_connection()
    try:
        if conn.set(FILL_KICK_KEY, 1, nx=True, ex=FILL_KICK_TTL):
            Queue(QUEUE_NAME, connection=conn).enqueue_call(
                FILL_FUNC, timeout=600, result_ttl=0, failure_ttl=24 * 3600
            )
    except RedisError as exc:
        log.warning("Could not queue the next batch of a bulk send (the sweeper will): %s", exc)
        return False
    return True


def fill() -> int:
    """Top the bulk lane up to two batches, oldest bulk send first. Returns the logs made."""
    conn = redis_connection()
    conn.delete(FILL_KICK_KEY)  # from now on, a kick queues another job
    size = batch_size()
    deadline = time.monotonic() + FILL_BUDGET
    unfilled = list(
        db.session.scalars(
            select(BulkSend.id)
            .where(BulkSend.state == RUNNING, BulkSend.filled_at.is_(None))
            .order_by(BulkSend.id)
        )
    )
    db.session.rollback()
    made = 0
    for bulk_id in unfilled:
        while True:
            if feed.bulk_waiting(conn) >= 2 * size:
                return made  # enough waiting: a drainer kicks again when it runs low
            if time.monotonic() > deadline:
                kick(conn)  # more to make: let other jobs (drains) run first
                return made
            batch = next_batch(bulk_id, size)
            if batch is None:
                break  # cancelled, or filled by another job meanwhile
            feed.push(batch.log_ids, connection=conn, bulk=True)
            made += len(batch.log_ids)
            if batch.filled:
                break
    return made
