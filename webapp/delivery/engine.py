"""Sending delivery logs: claim, attempt, record, schedule the next try.

The database is the source of truth; Redis only says when to look. A log is
claimed with a conditional UPDATE (a lease), so two workers never send it at
the same time; a worker killed mid-send leaves a lease that expires, and the
log is sent again (at-least-once). Work is done in batches: one UPDATE claims
many logs, one INSERT opens their attempts, one executemany records them.

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
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from requests.structures import CaseInsensitiveDict
from sqlalchemy import bindparam, case, delete, insert, or_, select, update
from sqlalchemy.exc import DBAPIError

from webapp.delivery import feed
from webapp.delivery.formats import PayloadError, build_payload
from webapp.delivery.http import DeliveryError, Sender
from webapp.delivery.queue import schedule_delivery
from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, Attempt, DeliveryLog, Form, Hook, Submission
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.submissions import event_headers

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 2000
# A job may run a little before the time stored in the database (clocks of
# several machines, rq-scheduler's whole-second timestamps).
DUE_TOLERANCE = timedelta(seconds=1)
INTERRUPTED = "Interrupted: the worker stopped during this attempt; it may have been received."
PAUSED = "Paused: the hook is disabled; this is sent when it is enabled again."


def lease_seconds() -> float:
    """How long a claim holds: beyond any send bounded by DELIVERY_TIMEOUT."""
    return current_app.config["DELIVERY_TIMEOUT"] * 2 + 5


def is_disconnect(exc: BaseException) -> bool:
    """Whether `exc` says the database went away (or cannot be reached yet).

    SQLAlchemy wraps the driver's errors: OperationalError covers a refused
    connection, "the database system is shutting down / starting up" and a
    session cut by the server; `connection_invalidated` any other error that
    SQLAlchemy recognised as a lost connection.
    """
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.OperationalError)


def get_sender() -> Sender:
    """One Sender (connection pool, SSRF guard) per process and app; thread-safe."""
    sender = current_app.extensions.get("formhooks.sender")
    if sender is None:
        from webapp import __version__

        sender = Sender(
            timeout=current_app.config["DELIVERY_TIMEOUT"],
            allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"],
            user_agent=f"Formhooks/{__version__}",
            pool_maxsize=SEND_THREADS,
        )
        current_app.extensions["formhooks.sender"] = sender
    return sender


@dataclass(frozen=True)
class Prepared:
    """A claimed log with its attempt opened and its request built."""

    log_id: int
    log_uid: str
    tries: int  # attempts of this series before this one
    hook_id: int
    attempt_id: int
    lease: datetime
    endpoint: str
    body: bytes
    headers: CaseInsensitiveDict
    auth: tuple[str, str] | None


@dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool
    status_code: int | None
    message: str
    duration: float = 0.0


@dataclass
class Batch:
    """What `prepare` did with the ids it was given."""

    ready: list[Prepared]  # claimed, attempt opened: to send
    released: list[int]  # claimed but no room for their hook: back to the feed
    broken: list[tuple[Prepared, Outcome]]  # the payload could not be built: to record


def prepare(
    log_ids: Iterable[int],
    *,
    has_room: Callable[[int], bool] | None = None,
    now: datetime | None = None,
) -> Batch:
    """Claim the due, unleased, pending logs among `log_ids` and open their attempts.

    The lease is `now + lease_seconds()`. Logs of a disabled hook are parked,
    logs out of tries are failed, and logs whose hook has no room
    (`has_room(hook_id)` is False) are released again, for the caller to put
    back in the feed. Logs whose payload cannot be built are returned with
    their failed outcome, for the caller to `record`. Commits.
    """
    now = now or utcnow()
    lease = now + timedelta(seconds=lease_seconds())
    claimed = db.session.execute(
        update(DeliveryLog)
        .where(
            DeliveryLog.id.in_(list(log_ids)),
            DeliveryLog.status == PENDING,
            DeliveryLog.next_retry_at <= now + DUE_TOLERANCE,
            or_(DeliveryLog.locked_until.is_(None), DeliveryLog.locked_until < now),
        )
        .values(
            locked_until=lease,
            # An expired lease means a worker died holding this log: say so, and
            # let the RETURNING tell us which logs may have an attempt left open.
            message=case(
                (DeliveryLog.locked_until.is_not(None), INTERRUPTED), else_=DeliveryLog.message
            ),
        )
        .returning(
            DeliveryLog.id,
            DeliveryLog.uid,
            DeliveryLog.tries,
            DeliveryLog.hook_id,
            DeliveryLog.submission_id,
            DeliveryLog.message,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        db.session.commit()
        return Batch([], [], [])
    hooks = _load_hooks({row.hook_id for row in claimed})
    tries = {row.id: row.tries for row in claimed}
    suspects = [row.id for row in claimed if row.message == INTERRUPTED]
    if suspects:
        tries = _close_interrupted_attempts(tries, suspects)
    max_tries = len(current_app.config["RETRY_DELAYS"]) + 1
    ready, parked, exhausted, released = [], [], [], []
    for row in claimed:
        hook = hooks[row.hook_id]
        if not hook["active"]:
            parked.append(row.id)
        elif tries[row.id] >= max_tries:
            exhausted.append(row.id)
        elif has_room is not None and not has_room(row.hook_id):
            released.append(row.id)
        else:
            ready.append(row)
    _set_logs(parked, next_retry_at=None, locked_until=None, message=PAUSED)
    _set_logs(released, locked_until=None)
    _set_logs(
        exhausted,
        status=FAILED,
        next_retry_at=None,
        locked_until=None,
        message=INTERRUPTED,
        date_modified=now,
    )
    prepared, broken = _open_attempts(ready, hooks, tries, lease, now)
    db.session.commit()
    return Batch(prepared, released, broken)


def unclaim(log_ids: list[int], now: datetime) -> None:
    """Undo a `prepare(log_ids, now=now)` whose commit may or may not have happened.

    The lease it took (if it did) is dropped and the attempts it opened are
    deleted: nothing was sent. Conditional on that very lease, so a log that
    another worker claimed since keeps its claim. Commits.
    """
    if not log_ids:
        return
    lease = now + timedelta(seconds=lease_seconds())
    held = db.session.scalars(
        update(DeliveryLog)
        .where(DeliveryLog.id.in_(log_ids), DeliveryLog.locked_until == lease)
        .values(locked_until=None)
        .returning(DeliveryLog.id)
        .execution_options(synchronize_session=False)
    ).all()
    if held:
        db.session.execute(
            delete(Attempt)
            .where(Attempt.log_id.in_(held), Attempt.started_at == now, Attempt.outcome.is_(None))
            .execution_options(synchronize_session=False)
        )
    db.session.commit()


def _load_hooks(hook_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The settings of each hook, secrets decrypted, read once per batch."""
    rows = db.session.execute(
        select(Hook, Form.uid).join(Form, Form.id == Hook.form_id).where(Hook.id.in_(hook_ids))
    ).all()
    hooks = {}
    for hook, form_uid in rows:
        headers = CaseInsensitiveDict()
        headers.update(hook.custom_headers)
        hooks[hook.id] = {
            "active": hook.active,
            "endpoint": hook.endpoint,
            "export_type": hook.export_type,
            "subset_fields": hook.subset_fields or [],
            "payload_template": hook.payload_template,
            "headers": headers,
            "auth": hook.basic_auth,
            "form_uid": form_uid,
        }
        db.session.expunge(hook)  # keep the identity map empty: memory stays flat
    return hooks


def _close_interrupted_attempts(tries: dict[int, int], suspects: list[int]) -> dict[int, int]:
    """An attempt left open by a killed worker counts as a failed try."""
    stale = db.session.execute(
        select(Attempt.id, Attempt.log_id).where(
            Attempt.log_id.in_(suspects), Attempt.outcome.is_(None)
        )
    ).all()
    if not stale:
        return tries
    db.session.execute(
        update(Attempt)
        .where(Attempt.id.in_([row.id for row in stale]))
        .values(outcome="error", message=INTERRUPTED)
        .execution_options(synchronize_session=False)
    )
    tries = dict(tries)
    for row in stale:
        tries[row.log_id] += 1
    db.session.execute(
        update(DeliveryLog),
        [
            {"id": log_id, "tries": tries[log_id], "message": INTERRUPTED}
            for log_id in {row.log_id for row in stale}
        ],
    )
    return tries


def _set_logs(log_ids: list[int], **values: Any) -> None:
    if log_ids:
        db.session.execute(
            update(DeliveryLog)
            .where(DeliveryLog.id.in_(log_ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _open_attempts(rows, hooks, tries, lease, now):
    """Build each request and insert its attempt row (before any HTTP call)."""
    bodies = (
        {
            sub.id: sub
            for sub in db.session.execute(
                select(
                    Submission.id,
                    Submission.content_type,
                    Submission.body,
                    Submission.data,
                    Submission.root_id,
                    Submission.root_instance_id,
                ).where(Submission.id.in_({row.submission_id for row in rows}))
            )
        }
        if rows
        else {}
    )
    built = []
    for row in rows:
        hook, submission = hooks[row.hook_id], bodies[row.submission_id]
        try:
            body, content_type = build_payload(
                content_type=submission.content_type,
                body=submission.body,
                data=submission.data,
                form_uid=hook["form_uid"],
                export_type=hook["export_type"],
                subset_fields=hook["subset_fields"],
                payload_template=hook["payload_template"],
            )
            error = None
        except PayloadError as exc:
            body, content_type, error = b"", "", f"Could not build the payload: {exc}"
        built.append((row, body, content_type, error))
    attempt_ids = (
        db.session.scalars(
            insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True),
            [
                {"log_id": row.id, "number": tries[row.id] + 1, "started_at": now, "message": ""}
                for row, *_ in built
            ],
        ).all()
        if built
        else []
    )
    prepared, broken = [], []
    for (row, body, content_type, error), attempt_id in zip(built, attempt_ids, strict=True):
        hook = hooks[row.hook_id]
        headers = CaseInsensitiveDict({"Content-Type": content_type})
        headers.update(hook["headers"])
        headers["X-Formhooks-Delivery"] = row.uid
        submission = bodies[row.submission_id]
        headers.update(event_headers(submission.root_id, submission.root_instance_id))
        item = Prepared(
            row.id,
            row.uid,
            tries[row.id],
            row.hook_id,
            attempt_id,
            lease,
            hook["endpoint"],
            body,
            headers,
            hook["auth"],
        )
        if error:
            broken.append((item, Outcome(False, True, None, error)))
        else:
            prepared.append(item)
    return prepared, broken


def send(item: Prepared, sender: Sender) -> Outcome:
    """Make the HTTP attempt (any thread). Never raises for delivery problems."""
    try:
        result = sender.post(item.endpoint, item.body, headers=item.headers, auth=item.auth)
    except DeliveryError as exc:
        return Outcome(False, exc.permanent, None, str(exc), exc.duration)
    except Exception as exc:  # a bug must fail the attempt, not the batch
        log.exception("Unexpected error sending log %s", item.log_id)
        return Outcome(False, False, None, f"Internal error: {exc.__class__.__name__}")
    message = result.excerpt if result.ok else f"HTTP {result.status_code}: {result.excerpt}"
    return Outcome(result.ok, False, result.status_code, message, result.duration)


# Both statements may run twice for one send (a commit whose answer was lost
# in a disconnect, then retried): each applies once. An attempt is completed
# only while open (a worker that took over after the lease closed it as
# interrupted), a log only while it holds this lease.
_ATTEMPT_RESULT = (
    update(Attempt)
    .where(Attempt.id == bindparam("b_id"), Attempt.outcome.is_(None))
    .values(
        duration_ms=bindparam("b_duration"),
        status_code=bindparam("b_code"),
        message=bindparam("b_message"),
        outcome=bindparam("b_outcome"),
    )
)
_LOG_RESULT = (
    update(DeliveryLog)
    .where(
        DeliveryLog.id == bindparam("b_id"),
        DeliveryLog.locked_until == bindparam("b_lease", type_=UTCDateTime),
    )
    .values(
        status=bindparam("b_status"),
        tries=bindparam("b_tries"),
        status_code=bindparam("b_code"),
        message=bindparam("b_message"),
        next_retry_at=bindparam("b_next", type_=UTCDateTime),
        last_attempt_at=bindparam("b_end", type_=UTCDateTime),
        date_modified=bindparam("b_end", type_=UTCDateTime),
        locked_until=None,
    )
)


def record(results: list[tuple[Prepared, Outcome]]) -> dict[int, str]:
    """Complete the attempts and move each log on: success, next try, or failed.

    A log whose lease is no longer ours (it expired and another worker took
    it) keeps the other worker's state, and so does the attempt, which that
    worker closed as interrupted. Idempotent: may be called again with the
    same results after a failed commit. Returns {log_id: "success" | "retry"
    | "failed"} as computed (the log may have kept another worker's state).
    """
    if not results:
        return {}
    end = utcnow()
    delays = current_app.config["RETRY_DELAYS"]
    attempts, logs, outcomes, retries = [], [], {}, []
    for item, outcome in results:
        message = outcome.message[:MESSAGE_LIMIT]
        tries = item.tries + 1
        attempts.append(
            {
                "b_id": item.attempt_id,
                "b_duration": round(outcome.duration * 1000),
                "b_code": outcome.status_code,
                "b_message": message,
                "b_outcome": "success"
                if outcome.ok
                else ("failure" if outcome.status_code else "error"),
            }
        )
        if outcome.ok:
            status, next_at, result = SUCCESS, None, "success"
        elif outcome.permanent or tries > len(delays):
            status, next_at, result = FAILED, None, "failed"
        else:
            status, next_at, result = PENDING, end + timedelta(seconds=delays[tries - 1]), "retry"
            retries.append((item.log_id, tries, next_at))
        outcomes[item.log_id] = result
        logs.append(
            {
                "b_id": item.log_id,
                "b_lease": item.lease,
                "b_status": status,
                "b_tries": tries,
                "b_code": outcome.status_code,
                "b_message": message,
                "b_next": next_at,
                "b_end": end,
            }
        )
    connection = db.session.connection()  # Core executemany: one pipelined round trip
    connection.execute(_ATTEMPT_RESULT, attempts)
    connection.execute(_LOG_RESULT, logs)
    db.session.commit()
    for log_id, tries, when in retries:
        schedule_delivery(log_id, tries, when)
    return outcomes


SEND_THREADS = 32  # concurrent sends per worker process
# Logs claimed at once per worker process: those sending plus as many waiting
# for a thread, so claims and records come in batches of about SEND_THREADS
# (one statement each) instead of about SEND_THREADS / 2.
MAX_CLAIMED = 2 * SEND_THREADS
SLOW = 0.25  # seconds: a hook whose sends average more than this is "slow"...
PER_SLOW_HOOK = 4  # ...and gets at most this many threads, so it cannot take them all
DRAIN_BUDGET = 5.0  # seconds a drain job runs before giving the worker back to RQ
DELIVERY_ERROR_WEIGHT = 1.0  # a send that got no answer counts as slow
COLLECT_WAIT = 0.005  # seconds to wait for more sends to finish before recording
DEFER = 0.5  # seconds before a log released for lack of room is looked at again
DB_RETRY_FIRST = 0.1  # seconds before trying the database again after it went away...
DB_RETRY_MAX = 1.0  # ...doubling up to this
STOP_REQUESTED = False  # set by worker.py on SIGTERM: finish what is in flight, take no more


class Drainer:
    """Takes due logs from the feed and sends them on a pool of threads.

    The database work stays on the calling thread (one session); only the
    HTTP calls run in the pool. Returns when the feed is empty, the budget
    is spent (then it queues another drain job) or a stop is requested.

    If the database goes away, the drainer takes nothing more, lets the sends
    in flight finish and retries recording them until the database is back
    (then it drains on) or their lease is over (then it gives up on them,
    they are sent again after the lease, and it returns).
    """

    def __init__(self, budget: float = DRAIN_BUDGET) -> None:
        self.budget = budget
        self.in_flight: dict[Future, Prepared] = {}
        self.per_hook: Counter[int] = Counter()
        self.latency: dict[int, float] = {}  # per hook, moving average of send seconds
        self.finished: list[tuple[Prepared, Outcome]] = []  # sent (or broken), not recorded yet
        self.unclaimed: tuple[list[int], datetime] | None = None  # a claim cut by a disconnect
        self.sent = 0
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
                    if len(self.in_flight) <= MAX_CLAIMED // 2 and time.monotonic() < deadline:
                        taken = self._take(pool)
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

    def _take(self, pool: ThreadPoolExecutor) -> int:
        free = MAX_CLAIMED - len(self.in_flight)
        if STOP_REQUESTED:
            return 0
        ids = feed.pop_due(free)
        if not ids:
            return 0
        now = utcnow()
        try:
            batch = prepare(ids, has_room=self.has_room, now=now)
        except Exception as exc:
            if is_disconnect(exc):
                # Not claimed (or the claim's commit is in doubt): back to the
                # feed at once, so the ids wait in Redis, not for the sweeper.
                self.unclaimed = (ids, now)
                feed.push(ids, delay=DEFER)
            self.per_hook = Counter(item.hook_id for item in self.in_flight.values())
            raise
        feed.push(batch.released, delay=DEFER)
        self.finished.extend(batch.broken)
        sender = get_sender()
        for item in batch.ready:
            self.in_flight[pool.submit(send, item, sender)] = item
        self.per_hook = Counter(item.hook_id for item in self.in_flight.values())
        if len(ids) == free:
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
            ids, now = self.unclaimed
            unclaim(ids, now)
            self.unclaimed = None
            feed.push(ids)  # already there unless another drainer took them: no-op then
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
        if not remaining or STOP_REQUESTED:
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
