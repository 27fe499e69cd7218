"""One run of the retention job: its record, its batches, its cap.

Every batch is one transaction that starts by writing the run's counts so
far to its `retention_runs` row. That first write is what makes a batch
safe on SQLite: the transaction holds the database's write lock from its
first statement, so nothing changes between what the batch reads and what
it deletes (on PostgreSQL the batch locks the rows it deletes instead, see
submissions.py). It also leaves, after each commit, a record of what the
run has done so far, whatever happens to the process next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import TypeVar

from flask import current_app
from sqlalchemy import ColumnElement, Integer, any_, delete, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError, OperationalError

from webapp.extensions import db
from webapp.models import RetentionRun
from webapp.models.base import utcnow
from webapp.models.retention import KEPT_RUNS

log = logging.getLogger(__name__)

#: Submissions (or attempts) looked at in one transaction.
BATCH_SIZE = 500
#: A periodic run stops after the batch that deletes this many submissions
#: (and as many attempts); the next run goes on.
MAX_PER_RUN = 20_000
#: A batch that fails on a deadlock or a lost connection is tried again.
ATTEMPTS = 3

T = TypeVar("T")


def in_ids(column, ids) -> ColumnElement[bool]:
    """`column IN ids` for a batch's hundreds of ids.

    On PostgreSQL one array parameter (`= ANY(...)`): a list of 500
    parameters cost more to send, parse and plan than the statement's work.
    """
    ids = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(ids, ARRAY(Integer)))
    return column.in_(ids)


@dataclass
class Counts:
    """What a batch, or a whole run, did (the columns of RUN_COUNTS)."""

    submissions_deleted: int = 0
    logs_deleted: int = 0
    files_deleted: int = 0
    attempts_deleted: int = 0
    kept_pending: int = 0
    kept_recent: int = 0
    kept_busy: int = 0

    def add(self, other: Counts) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclass(frozen=True)
class RunResult:
    """A finished run, as the CLI prints it and the job returns it."""

    run_id: int
    submission_days: int | None
    log_days: int | None
    complete: bool
    counts: Counts

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "submission_days": self.submission_days,
            "log_days": self.log_days,
            "complete": self.complete,
            **asdict(self.counts),
        }


class Progress:
    """The counts of a run so far, and its batches (see the module's docstring)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.counts = Counts()

    def _write(self, **values) -> None:
        db.session.execute(
            update(RetentionRun)
            .where(RetentionRun.id == self.run_id)
            .values(**asdict(self.counts), **values)
            .execution_options(synchronize_session=False)
        )

    def batch(self, work: Callable[[], tuple[Counts, T] | None]) -> T | None:
        """Run `work` in a transaction of its own; add its counts once committed.

        `work` returns (its counts, anything for the caller), or None when
        there was nothing left to look at.
        """
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._write()  # first: on SQLite, the write lock for the whole batch
                result = work()
                db.session.commit()
            except (OperationalError, IntegrityError) as exc:
                db.session.rollback()
                if attempt == ATTEMPTS:
                    raise
                log.warning("Retention batch failed (%s); trying it again", exc)
                continue
            if result is None:
                return None
            counts, rest = result
            self.counts.add(counts)
            return rest
        raise AssertionError("unreachable")

    def finish(self, complete: bool, error: str | None = None) -> None:
        self._write(finished_at=utcnow(), complete=complete, error=error)
        # Keep the last KEPT_RUNS runs (ids only grow).
        db.session.execute(delete(RetentionRun).where(RetentionRun.id <= self.run_id - KEPT_RUNS))
        db.session.commit()


def run_retention(
    trigger: str,
    *,
    batch_size: int = BATCH_SIZE,
    max_per_run: int | None = MAX_PER_RUN,
    now: datetime | None = None,
) -> RunResult | None:
    """Delete what the retention settings say is too old; None (nothing done) when both are unset.

    `trigger` is recorded ("schedule" or "command"). `max_per_run` None: no
    cap. `now` (default: now) is what the ages are counted from.
    """
    from webapp.retention.attempts import delete_old_attempts
    from webapp.retention.submissions import delete_old_submissions

    config = current_app.config
    submission_days = config["SUBMISSION_RETENTION_DAYS"]
    log_days = config["LOG_RETENTION_DAYS"]
    if submission_days is None and log_days is None:
        return None
    now = now or utcnow()
    cap = max_per_run if max_per_run is not None else float("inf")
    run = RetentionRun(
        trigger=trigger, started_at=utcnow(), submission_days=submission_days, log_days=log_days
    )
    db.session.add(run)
    db.session.commit()
    progress = Progress(run.id)
    complete = True
    try:
        if submission_days is not None:
            cutoff = now - timedelta(days=submission_days)
            complete = delete_old_submissions(progress, cutoff, batch_size, cap) and complete
        if log_days is not None:
            cutoff = now - timedelta(days=log_days)
            complete = delete_old_attempts(progress, cutoff, batch_size, cap) and complete
    except BaseException as exc:  # recorded, then raised again (an interrupt included)
        db.session.rollback()
        first_line = (str(exc).strip().splitlines() or [""])[0]  # no SQL, no parameters
        progress.finish(False, error=f"{exc.__class__.__name__}: {first_line}"[:500])
        raise
    progress.finish(complete)
    log.info("Retention run %s: %s", progress.run_id, asdict(progress.counts))
    return RunResult(progress.run_id, submission_days, log_days, complete, progress.counts)


def last_run() -> RetentionRun | None:
    """The newest run, finished or not."""
    return db.session.scalar(select(RetentionRun).order_by(RetentionRun.id.desc()).limit(1))
