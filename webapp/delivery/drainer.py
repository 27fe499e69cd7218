"""The drainer: takes due logs from the feed and sends them on a pool of threads.

If the database goes away (a restart, a failover), a drainer does not die
with the sends it has made: it waits for the sends in flight, then retries
recording them, with backoff, while their lease still holds. The record is
conditional on the lease (and on the attempt still being open), so retrying
it is harmless: applied once, or not at all if another worker has taken the
log since. Ids taken from the feed but not claimed go back to the feed. So a
restart sends nothing twice; only an outage longer than the lease does.

Worker processes commit with PostgreSQL's asynchronous commit (worker.py):
after a database crash the last few of their changes may be lost, which can
only make a log be sent again, never lost. Ingest commits stay synchronous.
A clean shutdown or restart (`pg_ctl stop -m fast`) writes every committed
change first, so it loses none.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select

from webapp.bulk.fill import kick as kick_fill
from webapp.bulk.fill import low_water
from webapp.dbfaults import is_disconnect
from webapp.delivery import feed
from webapp.delivery.claims import Outcome, Prepared, lease_seconds, prepare, record, unclaim
from webapp.delivery.results import DeliveryError
from webapp.delivery.sender import SEND_THREADS, Sender, get_sender
from webapp.extensions import db
from webapp.models.base import utcnow

log = logging.getLogger(__name__)


def send(item: Prepared, sender: Sender) -> Outcome:
    """Make the HTTP attempt (any thread). Never raises for delivery problems."""
    try:
        result = sender.send(item.request)
    except DeliveryError as exc:
        return Outcome(False, exc.permanent, None, str(exc), exc.duration)
    except Exception as exc:  # a bug must fail the attempt, not the batch
        log.exception("Unexpected error sending log %s", item.log_id)
        return Outcome(False, False, None, f"Internal error: {exc.__class__.__name__}")
    return Outcome(result.ok, False, result.status_code, result.message, result.duration)


# Logs claimed at once per worker process: those sending plus as many waiting
# for a thread, so claims and records come in batches of about SEND_THREADS
# (one statement each) instead of about SEND_THREADS / 2.
MAX_CLAIMED = 2 * SEND_THREADS
SLOW = 0.25  # seconds: a hook whose sends average more than this is "slow"...
PER_SLOW_HOOK = 4  # ...and gets at most this many threads, so it cannot take them all
DRAIN_BUDGET = 5.0  # seconds a drain job runs before giving the worker back to RQ
# While bulk logs (backfills, replays) fill more than half the room, the live
# lane is still looked at this often, so a live delivery does not wait for
# half of them to finish (docs/backfill.md, "Fairness").
LIVE_PEEK = 0.02  # seconds
DELIVERY_ERROR_WEIGHT = 1.0  # a send that got no answer counts as slow
COLLECT_WAIT = 0.005  # seconds to wait for more sends to finish before recording
DEFER = 0.5  # seconds before a log released for lack of room is looked at again
DB_RETRY_FIRST = 0.1  # seconds before trying the database again after it went away...
DB_RETRY_MAX = 1.0  # ...doubling up to this


class Drainer:
    """Takes due logs from the feed and sends them on a pool of threads.

    The database work stays on the calling thread (one session); only the
    HTTP calls run in the pool. Returns when the feed is empty, the budget
    is spent (then it queues another drain job) or a stop is requested.

    Live ids are taken first; ids of the bulk lane (backfills, replays) only
    when the live lane has fewer due ids than there is room for (docs/backfill.md,
    "Fairness").

    If the database goes away, the drainer takes nothing more, lets the sends
    in flight finish and retries recording them until the database is back
    (then it drains on) or their lease is over (then it gives up on them,
    they are sent again after the lease, and it returns).
    """

    # One per process: worker.py sets it on SIGTERM (request_stop); a drain in
    # progress then finishes what is in flight and takes no more.
    _stop = threading.Event()

    @classmethod
    def request_stop(cls) -> None:
        """Make every drain of this process stop taking work (thread- and signal-safe)."""
        cls._stop.set()

    @classmethod
    def stop_requested(cls) -> bool:
        """Whether request_stop was called in this process."""
        return cls._stop.is_set()

    def __init__(self, budget: float = DRAIN_BUDGET) -> None:
        self.budget = budget
        self.in_flight: dict[Future, Prepared] = {}
        self.per_hook: Counter[int] = Counter()
        self.latency: dict[int, float] = {}  # per hook, moving average of send seconds
        self.finished: list[tuple[Prepared, Outcome]] = []  # sent (or broken), not recorded yet
        # A claim cut by a disconnect: its ids, its time, those of the bulk lane.
        self.unclaimed: tuple[list[int], datetime, set[int]] | None = None
        self.sent = 0
        self.bulk_sending = 0  # of in_flight, logs of the bulk lane
        self.peeked = 0.0  # when the live lane was last looked at above half the room
        self.unrecorded = 0  # sends given up on: the database stayed away beyond their lease

    def has_room(self, hook_id: int) -> bool:
        if self.latency.get(hook_id, 0.0) > SLOW and self.per_hook[hook_id] >= PER_SLOW_HOOK:
            return False
        self.per_hook[hook_id] += 1
        return True

    def run(self) -> int:
        deadline = time.monotonic() + self.budget
        with feed.drainer_registered(), ThreadPoolExecutor(SEND_THREADS) as pool:
            while True:
                taken = 0
                try:
                    # Take work in batches: one claim and one commit serve many logs.
                    if time.monotonic() < deadline:
                        taken = self._take_if_room(pool)
                    if self.in_flight or self.finished:
                        self._collect()
                    elif taken == 0 and not self._more_to_do(deadline):
                        return self.sent
                except RedisError as exc:
                    self._finish_without_feed(exc)
                    return self.sent
                except Exception as exc:
                    if not is_disconnect(exc):
                        raise
                    if self._recover(exc):
                        continue
                    with contextlib.suppress(RedisError):
                        self._hand_over()
                    return self.sent

    def _finish_without_feed(self, error: RedisError) -> None:
        """Redis went away: take nothing more, but record every send in flight.

        The database still answers, so the sends made are recorded (else they
        would be sent again after their lease). Logs still in the feed wait
        there, or, if Redis lost them, for the sweeper.
        """
        log.warning(
            "Redis unreachable (%s): recording the %d sends in flight, taking no more",
            error,
            len(self.in_flight) + len(self.finished),
        )
        while self.in_flight or self.finished:
            try:
                self._collect()
            except Exception as exc:
                if not is_disconnect(exc):
                    raise
                if not self._recover(exc):
                    return

    def _pop(self, free: int) -> tuple[list[int], set[int]]:
        """Up to `free` due ids: live ones first, then the bulk lane's with what is left.

        A live id never waits behind the bulk lane, only for the next take;
        bulk ids come in the same batches as live ones, so each claim and
        record serves many logs.
        """
        ids = feed.pop_due(free)
        room = free - len(ids)
        if room <= 0:
            return ids, set()
        bulk, remaining = feed.pop_due_bulk(room)
        if bulk and remaining < low_water():
            kick_fill()  # the lane runs low: make the next batch of the backfill
        return ids + bulk, set(bulk)

    def _take_if_room(self, pool: ThreadPoolExecutor) -> int:
        """Take when half the room is free; live ids only, now and then, when bulk ones fill it."""
        if len(self.in_flight) <= MAX_CLAIMED // 2:
            return self._take(pool)
        now = time.monotonic()
        if (
            self.bulk_sending
            and len(self.in_flight) < MAX_CLAIMED
            and now - self.peeked >= LIVE_PEEK
        ):
            self.peeked = now
            return self._take(pool, live_only=True)
        return 0

    def _take(self, pool: ThreadPoolExecutor, *, live_only: bool = False) -> int:
        free = MAX_CLAIMED - len(self.in_flight)
        if self.stop_requested():
            return 0
        ids, bulk = (feed.pop_due(free), set()) if live_only else self._pop(free)
        if not ids:
            return 0
        now = utcnow()
        try:
            batch = prepare(ids, has_room=self.has_room, now=now)
        except Exception as exc:
            if is_disconnect(exc):
                # Not claimed (or the claim's commit is in doubt): back to the
                # feed at once, so the ids wait in Redis, not for the sweeper.
                self.unclaimed = (ids, now, bulk)
                feed.push_lanes(ids, bulk, delay=DEFER)
            self.per_hook = Counter(item.hook_id for item in self.in_flight.values())
            raise
        feed.push_lanes(batch.released, bulk, delay=DEFER)
        self.finished.extend(batch.broken)
        sender = get_sender()
        for item in batch.ready:
            self.in_flight[pool.submit(send, item, sender)] = item
            self.bulk_sending += item.bulk
        self.per_hook = Counter(item.hook_id for item in self.in_flight.values())
        if len(ids) == free and not live_only:
            feed.spread()  # a backlog: let idle worker processes help
        return len(ids)

    def _collect(self) -> None:
        """Record what has finished, waiting a moment so records come in groups."""
        if self.in_flight:
            done, _ = wait(self.in_flight, timeout=0.05, return_when=FIRST_COMPLETED)
            if done and len(done) < len(self.in_flight) // 2:
                done, _ = wait(self.in_flight, timeout=COLLECT_WAIT, return_when=ALL_COMPLETED)
            self._done(done)
        self._record()

    def _done(self, done: Iterable[Future]) -> None:
        for future in done:
            item = self.in_flight.pop(future)
            self.per_hook[item.hook_id] -= 1
            self.bulk_sending -= item.bulk
            outcome = future.result()
            seconds = outcome.duration if outcome.status_code else DELIVERY_ERROR_WEIGHT
            previous = self.latency.get(item.hook_id, seconds)
            self.latency[item.hook_id] = 0.8 * previous + 0.2 * seconds
            self.finished.append((item, outcome))

    def _record(self) -> None:
        if self.finished:
            record(self.finished)  # kept in self.finished until it commits
            self.sent += len(self.finished)
            self.finished = []

    def _recover(self, error: Exception) -> bool:
        """The database went away: wait for it, bounded by the leases, and record.

        Returns True once the database answers and every finished send is
        recorded; False if the leases ran out first (those logs are sent
        again after their lease, by whichever worker claims them).
        """
        self._rollback()
        # Nothing new can be claimed: let the sends in flight end (each is
        # bounded by DELIVERY_TIMEOUT), so their results are kept for the record.
        self._done(wait(self.in_flight).done)
        leases = [item.lease for item, _ in self.finished]
        give_up_at = max(leases) if leases else utcnow() + timedelta(seconds=lease_seconds())
        log.warning(
            "Database unreachable (%s): retrying until %s to record %d sends",
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
            give_up_at.isoformat(timespec="seconds"),
            len(self.finished),
        )
        delay = DB_RETRY_FIRST
        while True:
            remaining = (give_up_at - utcnow()).total_seconds()
            time.sleep(max(0.0, min(delay, remaining)))
            try:
                self._after_reconnect()
                log.info("Database back: drain goes on")
                return True
            except Exception as exc:
                if not is_disconnect(exc):
                    raise
                self._rollback()
            if utcnow() >= give_up_at:
                log.error(
                    "Database still unreachable after the lease: %d sends not recorded "
                    "(they will be sent again)",
                    len(self.finished),
                )
                self.unrecorded += len(self.finished)
                self.finished = []
                return False
            delay = min(delay * 2, DB_RETRY_MAX)

    def _after_reconnect(self) -> None:
        """Undo a claim cut by the disconnect, record what finished (or just ping)."""
        if self.unclaimed is not None:
            ids, now, bulk = self.unclaimed
            unclaim(ids, now)
            self.unclaimed = None
            # Already there unless another drainer took them: no-op then.
            feed.push_lanes(ids, bulk)
        if self.finished:
            self._record()
        else:
            db.session.execute(select(1))
            db.session.rollback()

    @staticmethod
    def _rollback() -> None:
        try:
            db.session.rollback()
        except Exception as exc:  # the connection is gone: nothing to roll back
            if not is_disconnect(exc):
                raise

    def _hand_over(self) -> None:
        """Stop while the database is away: another drain job takes over later."""
        if feed.release_kick():
            feed.kick()

    def _more_to_do(self, deadline: float) -> bool:
        """Nothing in flight and nothing due: stop, unless ids are still waiting."""
        remaining = feed.release_kick()
        if not remaining or self.stop_requested():
            if remaining:
                feed.kick()
            return False
        if time.monotonic() >= deadline:
            feed.kick()  # another drain job continues; RQ runs other jobs between
            return False
        if not feed.take_kick():
            return False  # another drainer took over
        time.sleep(0.05)  # ids deferred for a slow hook: not due yet
        return True
