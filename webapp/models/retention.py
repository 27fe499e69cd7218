"""Runs of the retention job (webapp.retention): when, with which limits, what they did.

One row per run, written as the run goes (each batch adds its counts to it
in the batch's own transaction), so a run that stopped half way still says
what it deleted. The dashboard shows the newest; the job keeps the last
KEPT_RUNS.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime, utcnow

#: How many runs are kept (older ones are deleted by the next run).
KEPT_RUNS = 100

#: What a run counts; each is a column, written by every batch.
RUN_COUNTS = (
    "submissions_deleted",
    "logs_deleted",
    "files_deleted",
    "attempts_deleted",
    "kept_pending",
    "kept_recent",
    "kept_busy",
)


class RetentionRun(db.Model):
    """One run: its limits (days, None: keep), its counts so far, and how it ended.

    `finished_at` is None while the run goes on, or if its process stopped
    before the end. `error` says why a run stopped on an error. `complete`
    is False when it stopped early: at its cap (the next run goes on), or
    on that error.
    """

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trigger: Mapped[str] = mapped_column(String(16))  # "schedule" or "command"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    submission_days: Mapped[int | None] = mapped_column(Integer, default=None)
    log_days: Mapped[int | None] = mapped_column(Integer, default=None)
    complete: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Submissions deleted, with their delivery logs and files (the attempts of
    # those logs went with them); attempts deleted from finished logs kept.
    submissions_deleted: Mapped[int] = mapped_column(Integer, default=0)
    logs_deleted: Mapped[int] = mapped_column(Integer, default=0)
    files_deleted: Mapped[int] = mapped_column(Integer, default=0)
    attempts_deleted: Mapped[int] = mapped_column(Integer, default=0)
    # Old submissions looked at and kept: a delivery pending, a version or
    # change younger than the limit, or rows another transaction held.
    kept_pending: Mapped[int] = mapped_column(Integer, default=0)
    kept_recent: Mapped[int] = mapped_column(Integer, default=0)
    kept_busy: Mapped[int] = mapped_column(Integer, default=0)
