"""Per-hook counts of delivery logs by status, kept by the database.

`hook_status_counts` has, per hook and status, a few rows (shards) whose sum
is the number of that hook's logs with that status. Triggers on
`delivery_logs` (migration 0003_hook_status_counts) add to them in the same
transaction as every insert, status change and delete of a log, cascades
included, so no code path can forget them; this module only reads them.
On PostgreSQL each writing transaction adds to a shard of its own, so
concurrent writers never wait on a counter row. The schema, triggers
included, is built by the migrations (`flask db upgrade`), not by
`db.create_all()`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import BigInteger, ForeignKey, SmallInteger, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from webapp.extensions import db
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
