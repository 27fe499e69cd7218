"""The delivery feed: log ids ready to send, in Redis, drained by RQ jobs.

One RQ job per delivery costs ~4 ms of RQ bookkeeping, more than the send
itself (docs/performance.md). So new deliveries go into a sorted set (score:
not before, in Unix seconds; a log is in it at most once), and an RQ `drain`
job takes them out in batches. A drain job is queued when none is pending
(the `kick` key), and each drain job ends by checking the feed again, so an
id is never stranded; if Redis loses the feed, the sweeper refills it.

Two lanes: live deliveries (FEED_KEY) and the logs of backfills and replays
(BULK_FEED_KEY, `bulk=True`). A drainer takes live ids first and bulk ids
only with the room left (webapp.delivery.drainer), so a backfill of ten
thousand submissions never makes a live delivery wait behind it
(docs/backfill.md).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

from webapp.delivery.queue import QUEUE_NAME, redis_connection

log = logging.getLogger(__name__)

FEED_KEY = "formhooks:feed"
BULK_FEED_KEY = "formhooks:feed:bulk"
KICK_KEY = "formhooks:drain:kick"
KICK_TTL = 10  # seconds; a drain job lost (or killed) delays the feed at most this long
DRAINERS_KEY = "formhooks:drainers"  # sorted set: drainer id -> last seen (Unix s)
DRAINER_TTL = 30
DRAIN_FUNC = "webapp.delivery.jobs.drain"

# Atomically take up to ARGV[2] ids whose score is <= ARGV[1] (due now).
_POP_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return ids
"""
# The same, and how many ids the set still holds afterwards.
_POP_DUE_COUNTED = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end
return {ids, redis.call('ZCARD', KEYS[1])}
"""


def _connection(connection: Redis | None) -> Redis:
    return connection if connection is not None else redis_connection()


def lane_key(bulk: bool) -> str:
    return BULK_FEED_KEY if bulk else FEED_KEY


def push(
    log_ids: Iterable[int],
    *,
    delay: float = 0.0,
    connection: Redis | None = None,
    bulk: bool = False,
) -> bool:
    """Add logs to the feed (due after `delay` s) and make sure a drain job runs.

    `bulk`: the logs of a backfill or replay, in their own lane. Returns
    False if Redis could not be reached: the logs stay due in the database
    and the sweeper pushes them again.
    """
    ids = list(log_ids)
    if not ids:
        return True
    conn = _connection(connection)
    due = time.time() + delay
    try:
        with conn.pipeline(transaction=False) as pipe:
            pipe.zadd(lane_key(bulk), {str(i): due for i in ids}, nx=True)
            pipe.set(KICK_KEY, 1, nx=True, ex=KICK_TTL)
            _, kicked = pipe.execute()
        if kicked:
            enqueue_drain(conn)
    except RedisError as exc:
        log.warning("Could not queue %d deliveries (the sweeper will): %s", len(ids), exc)
        return False
    return True


def enqueue_drain(connection: Redis | None = None) -> None:
    conn = _connection(connection)
    Queue(QUEUE_NAME, connection=conn).enqueue_call(
        DRAIN_FUNC, timeout=3600, result_ttl=0, failure_ttl=24 * 3600
    )


def kick(connection: Redis | None = None) -> None:
    """Queue a drain job unless one is already pending."""
    conn = _connection(connection)
    if conn.set(KICK_KEY, 1, nx=True, ex=KICK_TTL):
        enqueue_drain(conn)


def push_lanes(
    log_ids: Iterable[int], bulk_ids: set[int], *, delay: float = 0.0, connection=None
) -> bool:
    """Push each log to its lane: the bulk lane for those in `bulk_ids`."""
    ids = list(log_ids)
    live = [i for i in ids if i not in bulk_ids]
    bulk = [i for i in ids if i in bulk_ids]
    return push(live, delay=delay, connection=connection) and push(
        bulk, delay=delay, connection=connection, bulk=True
    )


def pop_due(count: int, connection: Redis | None = None) -> list[int]:
    """Take up to `count` due live ids out of the feed (atomic: each id goes to one drainer)."""
    conn = _connection(connection)
    ids = conn.eval(_POP_DUE, 1, FEED_KEY, time.time(), count)
    return [int(i) for i in ids]


def pop_due_bulk(count: int, connection: Redis | None = None) -> tuple[list[int], int]:
    """Take up to `count` due ids out of the bulk lane; and how many it still holds."""
    conn = _connection(connection)
    ids, remaining = conn.eval(_POP_DUE_COUNTED, 1, BULK_FEED_KEY, time.time(), count)
    return [int(i) for i in ids], int(remaining)


def release_kick(connection: Redis | None = None) -> bool:
    """A drainer stops: clear the kick, then say whether the feed still holds ids.

    If it does, the caller drains on (or re-kicks), so an id pushed while the
    kick was set is never left without a drainer.
    """
    conn = _connection(connection)
    with conn.pipeline(transaction=False) as pipe:
        pipe.delete(KICK_KEY)
        pipe.zcard(FEED_KEY)
        pipe.zcard(BULK_FEED_KEY)
        _, live, bulk = pipe.execute()
    return live + bulk > 0


def waiting(connection: Redis | None = None) -> int:
    """How many ids are in the feed, both lanes (due or not)."""
    with _connection(connection).pipeline(transaction=False) as pipe:
        pipe.zcard(FEED_KEY)
        pipe.zcard(BULK_FEED_KEY)
        return sum(pipe.execute())


def bulk_waiting(connection: Redis | None = None) -> int:
    """How many ids are in the bulk lane (due or not)."""
    return _connection(connection).zcard(BULK_FEED_KEY)


def in_feed(log_ids: list[int], connection: Redis | None = None, *, bulk=False) -> list[bool]:
    if not log_ids:
        return []
    scores = _connection(connection).zmscore(lane_key(bulk), [str(i) for i in log_ids])
    return [score is not None for score in scores]


def take_kick(connection: Redis | None = None) -> bool:
    """Take the kick for this drainer (False if another drainer holds it)."""
    return bool(_connection(connection).set(KICK_KEY, 1, nx=True, ex=KICK_TTL))


@contextmanager
def drainer_registered(connection: Redis | None = None) -> Iterator[str]:
    """Count this drainer among the running ones while the block runs."""
    conn = _connection(connection)
    drainer_id = uuid.uuid4().hex
    conn.zadd(DRAINERS_KEY, {drainer_id: time.time()})
    try:
        yield drainer_id
    finally:
        with suppress(RedisError):
            conn.zrem(DRAINERS_KEY, drainer_id)


def spread(connection: Redis | None = None) -> bool:
    """Queue one more drain job if worker processes sit idle beside a backlog.

    Drainers = running drain jobs + queued jobs; one more is added while
    that is below the number of worker processes on the queue.
    """
    conn = _connection(connection)
    queue = Queue(QUEUE_NAME, connection=conn)
    with conn.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(DRAINERS_KEY, "-inf", time.time() - DRAINER_TTL)
        pipe.zcard(DRAINERS_KEY)
        pipe.scard(WORKERS_BY_QUEUE_KEY % QUEUE_NAME)
        pipe.llen(queue.key)
        _, drainers, workers, queued = pipe.execute()
    if drainers + queued < workers:
        enqueue_drain(conn)
        return True
    return False
