"""The delivery log's state machine: claim (and open the attempt), unclaim, record.

The database is the source of truth; Redis only says when to look. A log is
claimed with a conditional UPDATE (a lease), so two workers never send it at
the same time; a worker killed mid-send leaves a lease that expires, and the
log is sent again (at-least-once). Work is done in batches: one UPDATE claims
many logs, one INSERT opens their attempts (before any HTTP call), one
executemany records them. Every statement here is conditional on the lease,
so it may be retried after a lost connection (see webapp.delivery.drainer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, delete, insert, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from webapp.attachments.listing import files_of
from webapp.bulk.cancel import stop_cancelled
from webapp.delivery.formats import PayloadError
from webapp.delivery.queue import schedule_delivery
from webapp.delivery.request import HookSettings, OutboundRequest, build_request
from webapp.extensions import db
from webapp.models import FAILED, PENDING, SUCCESS, Attempt, DeliveryLog, Form, Hook, Submission
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.hooks import encrypted_new_secret
from webapp.models.submissions import event_headers

MESSAGE_LIMIT = 2000
# A job may run a little before the time stored in the database (clocks of
# several machines, rq-scheduler's whole-second timestamps).
DUE_TOLERANCE = timedelta(seconds=1)
INTERRUPTED = "Interrupted: the worker stopped during this attempt; it may have been received."
PAUSED = "Paused: the hook is disabled; this is sent when it is enabled again."


def lease_seconds() -> float:
    """How long a claim holds: beyond any send bounded by DELIVERY_TIMEOUT."""
    return current_app.config["DELIVERY_TIMEOUT"] * 2 + 5


@dataclass(frozen=True)
class Prepared:
    """A claimed log with its attempt opened and its request built."""

    log_id: int
    log_uid: str
    tries: int  # attempts of this series before this one
    hook_id: int
    attempt_id: int
    lease: datetime
    request: OutboundRequest | None  # None when the payload could not be built
    bulk: bool = False  # made or restarted by a backfill or replay: its retries keep that lane


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended: what `record` writes to the attempt and the log."""

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
    logs out of tries are failed, logs of a cancelled backfill or replay are
    stopped (webapp.bulk.cancel), and logs whose hook has no room
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
            DeliveryLog.bulk_id,
        )
        .execution_options(synchronize_session=False)
    ).all()
    if not claimed:
        db.session.commit()
        return Batch([], [], [])
    hooks = _load_hooks({row.hook_id for row in claimed}, now)
    tries = {row.id: row.tries for row in claimed}
    suspects = [row.id for row in claimed if row.message == INTERRUPTED]
    if suspects:
        tries = _close_interrupted_attempts(tries, suspects)
    stopped = stop_cancelled([row for row in claimed if row.bulk_id is not None], tries, now)
    max_tries = len(current_app.config["RETRY_DELAYS"]) + 1
    ready, parked, exhausted, released = [], [], [], []
    for row in claimed:
        if row.id in stopped:
            continue
        if not hooks[row.hook_id].active:
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


def _load_hooks(hook_ids: set[int], now: datetime) -> dict[int, HookSettings]:
    """The settings of each hook at `now`, secrets decrypted, read once per batch."""
    rows = db.session.execute(
        select(Hook, Form.uid).join(Form, Form.id == Hook.form_id).where(Hook.id.in_(hook_ids))
    ).all()
    hooks = {}
    for hook, form_uid in rows:
        if not hook.signing_secret_encrypted:
            _give_signing_secret(hook)
        hooks[hook.id] = HookSettings.of(hook, form_uid, now)
        db.session.expunge(hook)  # keep the identity map empty: memory stays flat
    return hooks


def _give_signing_secret(hook: Hook) -> None:
    """A hook without a signing secret (docs/signatures.md) gets one on its first send.

    Written in the claim's transaction, conditional on the column being empty,
    so two workers at once keep the same (first) secret.
    """
    db.session.execute(
        update(Hook)
        .where(Hook.id == hook.id, Hook.signing_secret_encrypted.is_(None))
        .values(signing_secret_encrypted=encrypted_new_secret())
        .execution_options(synchronize_session=False)
    )
    stored = db.session.scalar(select(Hook.signing_secret_encrypted).where(Hook.id == hook.id))
    set_committed_value(hook, "signing_secret_encrypted", stored)


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


def _open_attempts(
    rows: list[Any],
    hooks: dict[int, HookSettings],
    tries: dict[int, int],
    lease: datetime,
    now: datetime,
) -> tuple[list[Prepared], list[tuple[Prepared, Outcome]]]:
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
    files = files_of(bodies)  # one query for the batch (indexed)
    # (row, request, None) or (row, None, the PayloadError)
    built: list[tuple[Any, OutboundRequest | None, PayloadError | None]] = []
    for row in rows:
        submission = bodies[row.submission_id]
        try:
            request = build_request(
                hooks[row.hook_id],
                content_type=submission.content_type,
                body=submission.body,
                data=submission.data,
                delivery_id=row.uid,
                extra_headers=event_headers(submission.root_id, submission.root_instance_id),
                files=files.get(submission.id),
            )
            error = None
        except PayloadError as exc:
            request, error = None, exc
        built.append((row, request, error))
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
    for (row, request, error), attempt_id in zip(built, attempt_ids, strict=True):
        item = Prepared(
            row.id,
            row.uid,
            tries[row.id],
            row.hook_id,
            attempt_id,
            lease,
            request,
            row.bulk_id is not None,
        )
        if error is not None:
            message = f"Could not build the payload: {error}"
            broken.append((item, Outcome(False, error.permanent, None, message)))
        else:
            prepared.append(item)
    return prepared, broken


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
            retries.append((item.log_id, tries, next_at, item.bulk))
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
    for log_id, tries, when, bulk in retries:
        schedule_delivery(log_id, tries, when, bulk=bulk)
    return outcomes
