"""Delivery logs (one per hook and submission) and their attempts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, utcnow
from webapp.models.hooks import Hook
from webapp.models.submissions import Submission

PENDING, SUCCESS, FAILED = "pending", "success", "failed"
STATUSES = (PENDING, SUCCESS, FAILED)


class DeliveryLog(db.Model):
    """The sending of one submission to one hook, across all its tries.

    `tries` counts the attempts of the current series (a manual retry starts a
    new series at 0). `next_retry_at` is when the next attempt is due while
    `pending`; `locked_until` is the lease of the worker sending it now.
    `reported_at` is when a final failure was emailed (webapp.reports);
    `report_claimed_until` is the lease of the report run emailing it now.
    `bulk_id` is the backfill or replay (webapp.models.bulk) that made or
    restarted it: such a log is sent in the bulk lane, after live ones
    (docs/backfill.md); NULL for a live delivery.
    """

    __tablename__ = "delivery_logs"
    __table_args__ = (
        UniqueConstraint("hook_id", "submission_id", name="uq_delivery_logs_hook_submission"),
        # The logs page (per hook, filtered by status, newest first) and the counts.
        Index("ix_delivery_logs_hook_status_created", "hook_id", "status", "date_created"),
        Index("ix_delivery_logs_hook_created", "hook_id", "date_created"),
        # The sweeper of due retries.
        Index("ix_delivery_logs_status_next_retry", "status", "next_retry_at"),
        Index("ix_delivery_logs_submission", "submission_id"),
        # Failure reports: final failures not yet reported.
        Index("ix_delivery_logs_status_reported", "status", "reported_at"),
        # A bulk send's progress and cancel; live logs (NULL) are not in it.
        Index(
            "ix_delivery_logs_bulk_status",
            "bulk_id",
            "status",
            postgresql_where=text("bulk_id IS NOT NULL"),
            sqlite_where=text("bulk_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("hl"))
    hook_id: Mapped[int] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"))
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(8), default=PENDING)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    date_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    report_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # No ON DELETE action: bulk sends go only with their hook, whose logs go too.
    bulk_id: Mapped[int | None] = mapped_column(ForeignKey("bulk_sends.id"), default=None)

    hook: Mapped[Hook] = relationship()
    submission: Mapped[Submission] = relationship()
    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="log",
        order_by="Attempt.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Attempt(db.Model):
    """One HTTP attempt: written before the call, completed after it."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    log_id: Mapped[int] = mapped_column(
        ForeignKey("delivery_logs.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer, default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    # None while in flight; then "success", "failure" (an HTTP answer) or "error".
    outcome: Mapped[str | None] = mapped_column(String(8), default=None)
    message: Mapped[str] = mapped_column(Text, default="")

    log: Mapped[DeliveryLog] = relationship(back_populates="attempts")


def status_counts(column, ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """{id: {status: count}} of delivery logs grouped by `column`, in one query.

    `column` is DeliveryLog.submission_id (or another column with few logs
    per id): every id and every status is present (0 when none). Reads only
    the indexes, but every matching entry: for hooks, whose logs are
    unbounded, use webapp.models.counters.hook_status_counts (constant time).
    """
    ids = list(ids)
    counts = {key: dict.fromkeys(STATUSES, 0) for key in ids}
    if ids:
        rows = db.session.execute(
            select(column, DeliveryLog.status, func.count())
            .where(column.in_(ids))
            .group_by(column, DeliveryLog.status)
        )
        for key, status, count in rows:
            counts[key][status] = count
    return counts
