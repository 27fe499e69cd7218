"""The logs page's query: filters and keyset pagination that stay fast at 100,000 logs.

Pages are cut by the position of a log (date_created, id), not by OFFSET:
every page, the first or the thousandth, is one range read of the index
(hook_id, status, date_created) or (hook_id, date_created), LIMIT 51. The
exact counts of the status tabs come from the hook's counters (kept by the
database, see webapp.models.counters); a count with date or search filters
stops at COUNT_CAP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import Select, and_, func, or_, select

from webapp.extensions import db
from webapp.models import STATUSES, DeliveryLog, Hook, Submission, hook_status_counts

PAGE_SIZE = 50
COUNT_CAP = 10_000
MAX_SEARCH = 255


@dataclass
class LogFilters:
    """What the user asked for in the query string; bad values are ignored, with a message."""

    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    search: str = ""
    problems: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args) -> LogFilters:
        filters = cls()
        status = args.get("status") or None
        filters.status = status if status in STATUSES else None
        filters.date_from = filters._date(args.get("from"), _("start date"))
        filters.date_to = filters._date(args.get("to"), _("end date"))
        filters.search = (args.get("q") or "").strip()[:MAX_SEARCH]
        return filters

    def _date(self, raw: str | None, label: str) -> date | None:
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            self.problems.append(
                _(
                    "The %(label)s “%(value)s” is not a date (YYYY-MM-DD); it was ignored.",
                    label=label,
                    value=raw[:20],
                )
            )
            return None

    @property
    def narrowed(self) -> bool:
        """True when filters other than the status tab are in use."""
        return bool(self.date_from or self.date_to or self.search)

    def query_args(self, **changes) -> dict[str, str]:
        """URL parameters for these filters (for links), with `changes` applied."""
        args = {
            "status": self.status or "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "q": self.search,
        }
        args.update(changes)
        return {key: value for key, value in args.items() if value}


@dataclass(frozen=True)
class LogRow:
    log: DeliveryLog
    instance_id: str


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    newer: int | None  # cursor for the previous (newer) page
    older: int | None  # cursor for the next (older) page
    at_start: bool


def filtered(hook: Hook, filters: LogFilters) -> Select:
    """SELECT of the hook's logs matching the filters (no order, no limit)."""
    stmt = select(DeliveryLog).where(DeliveryLog.hook_id == hook.id)
    if filters.status:
        stmt = stmt.where(DeliveryLog.status == filters.status)
    if filters.date_from:
        stmt = stmt.where(DeliveryLog.date_created >= _start_of(filters.date_from))
    if filters.date_to:
        stmt = stmt.where(DeliveryLog.date_created < _start_of(filters.date_to + timedelta(days=1)))
    if filters.search:
        matching = select(Submission.id).where(
            Submission.form_id == hook.form_id,
            Submission.instance_id.contains(filters.search, autoescape=True),
        )
        stmt = stmt.where(DeliveryLog.submission_id.in_(matching))
    return stmt


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _anchor(hook: Hook, log_id: int) -> datetime | None:
    return db.session.scalar(
        select(DeliveryLog.date_created).where(
            DeliveryLog.id == log_id, DeliveryLog.hook_id == hook.id
        )
    )


def log_page(
    hook: Hook, filters: LogFilters, *, before: int | None = None, after: int | None = None
) -> LogPage:
    """One page, newest first: the first page, or the one older than `before`,
    or the one newer than `after` (log ids from the previous page's links)."""
    stmt = filtered(hook, filters)
    created, ident = DeliveryLog.date_created, DeliveryLog.id
    newer_first = True
    anchor_time = None
    if after is not None and (anchor_time := _anchor(hook, after)) is not None:
        stmt = stmt.where(or_(created > anchor_time, and_(created == anchor_time, ident > after)))
        stmt = stmt.order_by(created.asc(), ident.asc())
        newer_first = False
    else:
        if before is not None and (anchor_time := _anchor(hook, before)) is not None:
            stmt = stmt.where(
                or_(created < anchor_time, and_(created == anchor_time, ident < before))
            )
        stmt = stmt.order_by(created.desc(), ident.desc())
    logs = list(db.session.scalars(stmt.limit(PAGE_SIZE + 1)))
    more = len(logs) > PAGE_SIZE
    logs = logs[:PAGE_SIZE]
    if not newer_first:
        if not more:  # back at the newest logs: show the same page as the first one
            return log_page(hook, filters)
        logs.reverse()
    at_start = anchor_time is None
    return LogPage(
        rows=_with_instance_ids(logs),
        newer=None if at_start or not logs else logs[0].id,
        older=logs[-1].id if logs and (more or not newer_first) else None,
        at_start=at_start,
    )


def _with_instance_ids(logs: list[DeliveryLog]) -> list[LogRow]:
    ids = {entry.submission_id for entry in logs}
    names = (
        dict(
            db.session.execute(
                select(Submission.id, Submission.instance_id).where(Submission.id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    return [LogRow(entry, names.get(entry.submission_id, "")) for entry in logs]


def capped_count(hook: Hook, filters: LogFilters) -> tuple[int, bool]:
    """(count, capped): how many logs match, counting at most COUNT_CAP + 1."""
    inner = filtered(hook, filters).with_only_columns(DeliveryLog.id).limit(COUNT_CAP + 1)
    count = db.session.scalar(select(func.count()).select_from(inner.subquery()))
    return min(count, COUNT_CAP), count > COUNT_CAP


def status_tab_counts(hook: Hook) -> dict[str, int]:
    """{status: count} of the hook's logs, exact, for the status tabs.

    Read from the hook's counters: the same cost with 100 or 10 million logs.
    """
    return hook_status_counts([hook.id])[hook.id]
