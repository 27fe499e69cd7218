"""One batch of a bulk send: its logs made (backfill) or restarted (replay), in one transaction.

Each batch first takes the bulk send's row (a conditional UPDATE: it waits
for a batch made at the same time by another worker, and finds nothing if
the send was cancelled or finished meanwhile), then makes at most `size`
logs, then moves the cursor past the ids it looked at, and commits. A
worker killed mid-batch rolls all of it back; the next batch starts from
the cursor. So every submission gets at most one log, whatever runs at the
same time:

- A backfill takes the form's submissions (their first row, `root_id` NULL)
  in its range with no log for the hook on any of their versions, and adds
  one pending log per submission, for its current (latest received)
  version, by INSERT ... SELECT ... ON CONFLICT (hook_id, submission_id) DO
  NOTHING: a log made meanwhile by a live delivery or an overlapping
  backfill wins, and this one is skipped (the same on SQLite and
  PostgreSQL).
- A replay restarts the hook's logs of its statuses and range: a fresh
  series (tries 0, due now) with the same uid, in the bulk lane.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, literal, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from webapp.extensions import db
from webapp.ingest.storing import LOG_UID_SQL
from webapp.models import PENDING, DeliveryLog, Hook, Submission
from webapp.models.base import UTCDateTime, utcnow
from webapp.models.bulk import BACKFILL, RUNNING, BulkSend
from webapp.models.submissions import latest_version_id

REPLAYED = "Replay requested; waiting for a worker."
# A delivery log uid made by SQLite: "hl" + 20 hex digits of randomblob (a CSPRNG).
_SQLITE_LOG_UID = "'hl' || lower(hex(randomblob(10)))"


@dataclass(frozen=True)
class Made:
    """What one batch did: the logs to push to the bulk lane, and whether it was the last."""

    log_ids: list[int]
    filled: bool


def next_batch(bulk_id: int, size: int, now: datetime | None = None) -> Made | None:
    """Make the next batch of a running bulk send and commit; None if it is not running.

    `filled` is true when no batch is left after this one.
    """
    now = now or utcnow()
    row = db.session.execute(
        update(BulkSend)
        .where(BulkSend.id == bulk_id, BulkSend.state == RUNNING, BulkSend.filled_at.is_(None))
        .values(date_modified=now)
        .returning(
            BulkSend.kind,
            BulkSend.hook_id,
            BulkSend.since,
            BulkSend.until,
            BulkSend.statuses,
            BulkSend.cursor,
            BulkSend.upper_id,
            BulkSend.date_created,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        db.session.rollback()
        return None
    if row.kind == BACKFILL:
        keys = db.session.scalars(backfill_candidates(row).order_by(Submission.id).limit(size))
        keys = list(keys)
        log_ids = _insert_logs(bulk_id, row.hook_id, keys, now) if keys else []
    else:
        keys = list(db.session.scalars(replay_candidates(row).order_by(DeliveryLog.id).limit(size)))
        log_ids = _restart_logs(bulk_id, keys, row, now) if keys else []
    filled = len(keys) < size
    values = {"created": BulkSend.created + len(log_ids)}
    if keys:
        values["cursor"] = max(keys)
    if filled:
        values["filled_at"] = now
    db.session.execute(
        update(BulkSend)
        .where(BulkSend.id == bulk_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return Made(log_ids, filled)


def backfill_candidates(bulk, *, counted: bool = False) -> Select:
    """The ids of the submissions a backfill still has to send, after its cursor.

    `bulk` has hook_id, since, until, cursor and upper_id. `counted`: a
    count of them instead (what the request answers).
    """
    form_id = select(Hook.form_id).where(Hook.id == bulk.hook_id).scalar_subquery()
    version = aliased(Submission, name="version")
    own_log = exists().where(
        DeliveryLog.hook_id == bulk.hook_id, DeliveryLog.submission_id == Submission.id
    )
    version_log = (
        exists()
        .where(
            version.root_id == Submission.id,
            DeliveryLog.submission_id == version.id,
            DeliveryLog.hook_id == bulk.hook_id,
        )
        .correlate(Submission)
    )
    conditions = [
        Submission.form_id == form_id,
        Submission.root_id.is_(None),
        Submission.id > bulk.cursor,
        Submission.id <= bulk.upper_id,
        Submission.created_at < bulk.until,
        ~own_log,
        ~version_log,
    ]
    if bulk.since is not None:
        conditions.append(Submission.created_at >= bulk.since)
    column = func.count() if counted else Submission.id
    return select(column).select_from(Submission).where(*conditions)


def replay_candidates(bulk, *, counted: bool = False) -> Select:
    """The ids of the logs a replay still has to restart, after its cursor.

    Those finished when it was requested (`bulk.date_created`): one that was
    pending then and finished since has just been sent, not to be sent again.
    """
    conditions = [
        DeliveryLog.hook_id == bulk.hook_id,
        DeliveryLog.status.in_(list(bulk.statuses)),
        DeliveryLog.id > bulk.cursor,
        DeliveryLog.id <= bulk.upper_id,
        DeliveryLog.date_created < bulk.until,
        DeliveryLog.date_modified <= bulk.date_created,
    ]
    if bulk.since is not None:
        conditions.append(DeliveryLog.date_created >= bulk.since)
    column = func.count() if counted else DeliveryLog.id
    return select(column).select_from(DeliveryLog).where(*conditions)


def _insert_logs(bulk_id: int, hook_id: int, submission_ids: list[int], now) -> list[int]:
    postgres = db.engine.dialect.name == "postgresql"
    when = literal(now, UTCDateTime())
    source = select(
        literal_column(LOG_UID_SQL if postgres else _SQLITE_LOG_UID),
        literal(hook_id),
        latest_version_id(),
        literal(bulk_id),
        literal(PENDING),
        literal(0),
        literal(""),
        when,
        when,
        when,
    ).where(Submission.id.in_(submission_ids))
    # In one order, so two batches inserting the same submissions at once (two
    # overlapping backfills) wait for each other in turn, never in a deadlock.
    source = source.order_by(Submission.id)
    columns = [
        "uid",
        "hook_id",
        "submission_id",
        "bulk_id",
        "status",
        "tries",
        "message",
        "date_created",
        "date_modified",
        "next_retry_at",
    ]
    dialect_insert = postgresql.insert if postgres else sqlite.insert
    statement = (
        dialect_insert(DeliveryLog)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=["hook_id", "submission_id"])
        .returning(DeliveryLog.id)
    )
    return sorted(db.session.scalars(statement))


def _restart_logs(bulk_id: int, log_ids: list[int], bulk, now) -> list[int]:
    """A fresh series for each log still as it was (same uid), in the bulk lane.

    `reported_at` is kept: a failure already emailed is not emailed again if
    the replay fails too; one that was not is.
    """
    return sorted(
        db.session.scalars(
            update(DeliveryLog)
            .where(
                DeliveryLog.id.in_(log_ids),
                DeliveryLog.status.in_(list(bulk.statuses)),
                DeliveryLog.date_modified <= bulk.date_created,
            )
            .values(
                status=PENDING,
                tries=0,
                next_retry_at=now,
                locked_until=None,
                bulk_id=bulk_id,
                message=REPLAYED,
                date_modified=now,
            )
            .returning(DeliveryLog.id)
            .execution_options(synchronize_session=False)
        )
    )
