"""Redis, the RQ queue and rq-scheduler, as the rest of the app sees them.

Jobs carry ids, never ORM objects. New deliveries go through the feed
(webapp.delivery.feed); a scheduled retry is an RQ job with a deterministic
id (`job_id(log_id, tries)`), so the sweeper can ask Redis whether a due log
is already on its way before sending it again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq_scheduler import Scheduler

from webapp import redis_client

log = logging.getLogger(__name__)

QUEUE_NAME = "formhooks"
DELIVER_FUNC = "webapp.delivery.jobs.deliver"
JOB_TIMEOUT = 600  # seconds; a send is bounded far below by DELIVERY_TIMEOUT
FAILURE_TTL = 7 * 24 * 3600


def init_app(app: Flask) -> None:
    """Create the Redis client (it connects lazily, on first use)."""
    app.extensions["formhooks.redis"] = redis_client.connect(
        app.config["REDIS_URL"], app.config["REDIS_SSL_CERT_REQS"]
    )


def redis_connection() -> Redis:
    return current_app.extensions["formhooks.redis"]


def delivery_queue(connection: Redis | None = None) -> Queue:
    return Queue(QUEUE_NAME, connection=connection or redis_connection())


def scheduler(connection: Redis | None = None, interval: float = 1.0) -> Scheduler:
    return Scheduler(
        queue_name=QUEUE_NAME, connection=connection or redis_connection(), interval=interval
    )


def job_id(log_id: int, tries: int) -> str:
    """The id of the job that makes attempt `tries + 1` of a log's series."""
    return f"fh-deliver-{log_id}-{tries}"


def schedule_delivery(log_id: int, tries: int, when: datetime, *, bulk: bool = False) -> bool:
    """Ask rq-scheduler to queue the next attempt of a log at `when` (aware UTC).

    `bulk`: the log is a backfill's or replay's, and goes back to that lane.
    Returns False when Redis could not be reached (the sweeper will catch up).
    """
    try:
        scheduler().enqueue_at(
            when,
            DELIVER_FUNC,
            log_id,
            *([True] if bulk else []),
            job_id=job_id(log_id, tries),
            timeout=JOB_TIMEOUT,
            job_result_ttl=0,
        )
    except RedisError as exc:
        log.warning("Could not schedule log %s (the sweeper will): %s", log_id, exc)
        return False
    return True
