"""Counts kept by the database: logs per hook and status, submissions per
form, logs per hour and status.

`hook_status_counts` has, per hook and status, a few rows (shards) whose sum
is the number of that hook's logs with that status; `form_submission_counts`
and `log_hour_counts` are built the same way. Triggers on `delivery_logs`
and `submissions` (migrations 0003_hook_status_counts and
0004_form_and_hour_counts) add to them in the same transaction as every
insert, status change and delete, cascades included, so no code path can
forget them; this module only reads them.
On PostgreSQL each writing transaction adds to a shard of its own, so
concurrent writers never wait on a counter row. The schema, triggers
included, is built by the migrations (`flask db upgrade`), not by
`db.create_all()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import BigInteger, ForeignKey, SmallInteger, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
from webapp.models.base import UTCDateTime
from webapp.models.deliveries import STATUSES


class HookStatusCount(db.Model):
    """One shard of a hook's count of logs in one status (written by triggers only)."""

    __tablename__ = "hook_status_counts"

    hook_id: Mapped[int] = mapped_column(
        ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(8), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


def hook_status_counts(hook_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """{hook id: {status: count}} for these hooks, in one query of the counters.

    Every id and every status is present (0 when none). Costs the same with
    a thousand logs or ten million: it reads at most a few rows per hook and status.
    """
    ids = list(hook_ids)
    counts = {hook_id: dict.fromkeys(STATUSES, 0) for hook_id in ids}
    if ids:
        rows = db.session.execute(
            select(HookStatusCount.hook_id, HookStatusCount.status, func.sum(HookStatusCount.n))
            .where(HookStatusCount.hook_id.in_(ids))
            .group_by(HookStatusCount.hook_id, HookStatusCount.status)
        )
        for hook_id, status, count in rows:
            counts[hook_id][status] = int(count)
    return counts


class FormSubmissionCount(db.Model):
    """One shard of a form's count of submissions (written by triggers only, 0004)."""

    __tablename__ = "form_submission_counts"

    form_id: Mapped[int] = mapped_column(
        ForeignKey("forms.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class LogHourCount(db.Model):
    """One shard of the count of logs created in one UTC hour with one status.

    Written by triggers only (0004): a log counts in the hour it was created,
    under its current status, for as long as it exists.
    """

    __tablename__ = "log_hour_counts"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    status: Mapped[str] = mapped_column(String(8), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


def form_submission_counts(form_ids: Iterable[int]) -> dict[int, int]:
    """{form id: number of submissions} for these forms (0 when none), from the counters."""
    ids = list(form_ids)
    counts = dict.fromkeys(ids, 0)
    if ids:
        rows = db.session.execute(
            select(FormSubmissionCount.form_id, func.sum(FormSubmissionCount.n))
            .where(FormSubmissionCount.form_id.in_(ids))
            .group_by(FormSubmissionCount.form_id)
        )
        for form_id, count in rows:
            counts[form_id] = int(count)
    return counts


def hourly_log_counts(since: datetime) -> dict[datetime, dict[str, int]]:
    """{UTC hour: {status: count}} of the logs created from the hour holding `since` on.

    Reads a few rows per hour and status, however many logs there are; hours
    without logs are absent.
    """
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    rows = db.session.execute(
        select(LogHourCount.hour, LogHourCount.status, func.sum(LogHourCount.n))
        .where(LogHourCount.hour >= start)
        .group_by(LogHourCount.hour, LogHourCount.status)
    )
    counts: dict[datetime, dict[str, int]] = {}
    for hour, status, count in rows:
        if count:
            hour = as_utc(hour)
            counts.setdefault(hour, dict.fromkeys(STATUSES, 0))[status] = int(count)
    return counts


def as_utc(value: datetime | str | None) -> datetime | None:
    """Aggregates skip the column type on SQLite (text): parse them back to aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)
