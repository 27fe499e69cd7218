"""Read queries shared by the panel's pages: counts in one GROUP BY, never N+1.

Per-hook counts come from the counters kept by the database
(webapp.models.counters), never from counting the logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import Date, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import (
    FAILED,
    STATUSES,
    DeliveryLog,
    Form,
    Hook,
    HookStatusCount,
    Submission,
    counters,
)

StatusCounts = dict[str, int]


def empty_counts() -> StatusCounts:
    return dict.fromkeys(STATUSES, 0)


def hook_status_counts(hook_ids: Iterable[int]) -> dict[int, StatusCounts]:
    """{hook id: {status: count}} for these hooks, in one query of the counters."""
    return counters.hook_status_counts(hook_ids)


def form_submission_stats(form_ids: Iterable[int]) -> dict[int, tuple[int, datetime | None]]:
    """{form id: (submission count, last received)} in one query."""
    ids = list(form_ids)
    stats: dict[int, tuple[int, datetime | None]] = {form_id: (0, None) for form_id in ids}
    if not ids:
        return stats
    rows = db.session.execute(
        select(Submission.form_id, func.count(), func.max(Submission.created_at))
        .where(Submission.form_id.in_(ids))
        .group_by(Submission.form_id)
    )
    for form_id, count, last in rows:
        stats[form_id] = (count, _as_utc(last))
    return stats


def _as_utc(value):
    """func.max() bypasses the column type on SQLite: parse it back to aware UTC."""
    if value is None:
        return None
    from webapp.models.base import UTCDateTime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)


def form_hook_counts(form_ids: Iterable[int]) -> dict[int, int]:
    """{form id: number of hooks} in one query."""
    ids = list(form_ids)
    counts = dict.fromkeys(ids, 0)
    if ids:
        rows = db.session.execute(
            select(Hook.form_id, func.count()).where(Hook.form_id.in_(ids)).group_by(Hook.form_id)
        )
        counts.update(dict(rows.all()))
    return counts


def _utc_day(column) -> ColumnElement:
    """The UTC calendar day of a timestamp column, on SQLite and PostgreSQL."""
    if db.engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def daily_status_counts(since: datetime) -> dict[date, StatusCounts]:
    """{UTC day: {status: count}} of the logs created since `since`."""
    day = _utc_day(DeliveryLog.date_created).label("day")
    rows = db.session.execute(
        select(day, DeliveryLog.status, func.count())
        .where(DeliveryLog.date_created >= since)
        .group_by(day, DeliveryLog.status)
    )
    result: dict[date, StatusCounts] = defaultdict(empty_counts)
    for value, status, count in rows:
        if isinstance(value, str):
            value = date.fromisoformat(value)
        result[value][status] = count
    return dict(result)


def status_counts_since(since: datetime) -> StatusCounts:
    counts = empty_counts()
    rows = db.session.execute(
        select(DeliveryLog.status, func.count())
        .where(DeliveryLog.date_created >= since)
        .group_by(DeliveryLog.status)
    )
    counts.update(dict(rows.all()))
    return counts


def failing_hooks(limit: int = 10) -> list[tuple[Hook, int]]:
    """Hooks with failed logs, most failures first, with their form loaded.

    Reads the counters: the cost depends on the number of hooks, not of logs.
    """
    failed = func.sum(HookStatusCount.n).label("failed")
    rows = db.session.execute(
        select(Hook, failed)
        .join(HookStatusCount, HookStatusCount.hook_id == Hook.id)
        .where(HookStatusCount.status == FAILED)
        .group_by(Hook.id)
        .having(failed > 0)
        .order_by(failed.desc(), Hook.id)
        .limit(limit)
    ).all()
    _load_forms(hook for hook, _ in rows)
    return [(hook, int(count)) for hook, count in rows]


def disabled_hooks(limit: int = 10) -> list[Hook]:
    hooks = list(
        db.session.scalars(
            select(Hook)
            .where(Hook.active.is_(False))
            .order_by(Hook.date_modified.desc())
            .limit(limit)
        )
    )
    _load_forms(hooks)
    return hooks


def _load_forms(hooks: Iterable[Hook]) -> None:
    """Load the forms of these hooks in one query (they stay in the session)."""
    ids = {hook.form_id for hook in hooks}
    if ids:
        list(db.session.scalars(select(Form).where(Form.id.in_(ids))))


def days_back(today: date, count: int) -> list[date]:
    """The last `count` days, oldest first, ending with `today`."""
    return [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]
