"""Read queries shared by the panel's pages: counts in one GROUP BY, never N+1.

Per-hook counts come from the counters kept by the database
(webapp.models.counters), never from counting the logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    FAILED,
    STATUSES,
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
    """{form id: (submission count, last received)}, in two small queries.

    The count comes from the counters; the last submission from one probe of
    the (form_id, created_at) index per form: neither reads the submissions.
    """
    ids = list(form_ids)
    if not ids:
        return {}
    counts = counters.form_submission_counts(ids)
    last = (
        select(func.max(Submission.created_at))
        .where(Submission.form_id == Form.id)
        .correlate(Form)
        .scalar_subquery()
    )
    latest = dict(db.session.execute(select(Form.id, last).where(Form.id.in_(ids))).all())
    return {form_id: (counts[form_id], counters.as_utc(latest.get(form_id))) for form_id in ids}


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


def hourly_status_counts(since: datetime) -> dict[datetime, StatusCounts]:
    """{UTC hour: {status: count}} of the logs created from the hour of `since` on.

    From the counters kept by the database: the cost depends on the number
    of hours, not of logs.
    """
    return counters.hourly_log_counts(since)


def daily_status_counts(hourly: dict[datetime, StatusCounts]) -> dict[date, StatusCounts]:
    """The hourly counts added up by UTC day."""
    daily: dict[date, StatusCounts] = defaultdict(empty_counts)
    for hour, counts in hourly.items():
        for status, count in counts.items():
            daily[hour.date()][status] += count
    return dict(daily)


def status_counts_since(hourly: dict[datetime, StatusCounts], since: datetime) -> StatusCounts:
    """The hourly counts added up from the hour of `since` on."""
    start = since.replace(minute=0, second=0, microsecond=0)
    total = empty_counts()
    for hour, counts in hourly.items():
        if hour >= start:
            for status, count in counts.items():
                total[status] += count
    return total


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
