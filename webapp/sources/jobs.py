"""RQ entry points of the sources: the periodic dispatch, and one poll per source.

`dispatch` is a periodic job (declared in webapp.sources.init_app, every
CENTRAL_POLL_INTERVAL seconds): it queues a `poll` job for each active
source that is due and not being polled. Polls run on the workers, never in
the web process; the lease in webapp.sources.cursor makes a duplicate job a
no-op.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import or_, select

from webapp.delivery.queue import delivery_queue, redis_connection
from webapp.extensions import db
from webapp.models import Source
from webapp.models.base import utcnow
from webapp.sources.poller import BUDGET_SECONDS
from webapp.tasks import run_in_app

log = logging.getLogger(__name__)

POLL_FUNC = "webapp.sources.jobs.poll"
ON_ITS_WAY = {"queued", "started", "scheduled", "deferred"}


def poll_job_id(source_id: int) -> str:
    return f"fh-central-poll-{source_id}"


def dispatch() -> int:
    """Queue a poll for every due source. Returns how many were queued."""
    return run_in_app(_dispatch)


def poll(source_id: int) -> int:
    """Poll one source (see poller.poll_source). Returns how many submissions were stored."""
    from webapp.sources.poller import poll_source

    def run() -> int:
        result = poll_source(source_id)
        if result is not None and result.more:
            enqueue_poll(source_id)
        return result.stored if result else 0

    return run_in_app(run)


def due_source_ids() -> list[int]:
    now = utcnow()
    tolerance = timedelta(seconds=current_app.config["CENTRAL_POLL_INTERVAL"] / 2)
    ids = list(
        db.session.scalars(
            select(Source.id)
            .where(
                Source.active.is_(True),
                Source.next_poll_at <= now + tolerance,
                or_(Source.leased_until.is_(None), Source.leased_until < now),
            )
            .order_by(Source.next_poll_at)
        )
    )
    db.session.rollback()
    return ids


def enqueue_poll(source_id: int) -> bool:
    """Queue a poll of the source unless one is queued or running already."""
    connection = redis_connection()
    job_id = poll_job_id(source_id)
    try:
        status = connection.hget(Job.key_for(job_id), "status")
        if status is not None and status.decode() in ON_ITS_WAY:
            return False
        delivery_queue(connection).enqueue(
            POLL_FUNC,
            source_id,
            job_id=job_id,
            job_timeout=int(BUDGET_SECONDS) + 600,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError as exc:
        log.warning("Could not queue a poll of source %s: %s", source_id, exc)
        return False
    return True


def _dispatch() -> int:
    return sum(1 for source_id in due_source_ids() if enqueue_poll(source_id))
