"""Is the delivery machinery alive? Redis, RQ workers, rq-scheduler, queue depth.

Read from Redis only (RQ's own registrations), never from the database. When
Redis cannot be reached, `queue_health()` says so instead of raising, so the
dashboard still renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from webapp.delivery import feed
from webapp.delivery.queue import delivery_queue

SCHEDULER_KEYS = "rq:scheduler_instance:*"
SCHEDULED_JOBS_KEY = "rq:scheduler:scheduled_jobs"


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str
    last_heartbeat: datetime | None


@dataclass
class QueueHealth:
    """What the dashboard shows about the background processes."""

    redis_ok: bool
    error: str | None = None
    workers: list[WorkerInfo] = field(default_factory=list)
    schedulers: int = 0
    queued: int = 0
    scheduled: int = 0

    @property
    def worker_alive(self) -> bool:
        return bool(self.workers)

    @property
    def scheduler_alive(self) -> bool:
        return self.schedulers > 0


def queue_health(connection: Redis) -> QueueHealth:
    """Ask Redis about workers, schedulers and queues; never raises RedisError."""
    try:
        connection.ping()
        workers = [
            WorkerInfo(w.name, w.get_state(), w.last_heartbeat)
            for w in Worker.all(connection=connection)
        ]
        return QueueHealth(
            redis_ok=True,
            workers=sorted(workers, key=lambda w: w.name),
            schedulers=_live_schedulers(connection),
            # Deliveries wait in the feed; other jobs (drains, sweeps, reports) in RQ.
            queued=feed.waiting(connection) + delivery_queue(connection).count,
            scheduled=connection.zcard(SCHEDULED_JOBS_KEY),
        )
    except (RedisError, OSError) as exc:
        return QueueHealth(redis_ok=False, error=f"{exc.__class__.__name__}: {exc}")


def _live_schedulers(connection: Redis) -> int:
    """rq-scheduler instances whose key has not expired and that did not record a death."""
    alive = 0
    for key in connection.scan_iter(match=SCHEDULER_KEYS, count=100):
        if not connection.hexists(key, "death"):
            alive += 1
    return alive
