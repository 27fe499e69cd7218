"""Bulk sends: a hook's backfill (existing submissions) or replay (deliveries again).

A bulk send is its own state, in the database: the set it covers is fixed
when it is requested (`upper_id`: the last submission id, for a backfill,
or log id, for a replay, that it may take), and `cursor` is the last id
handled, moved in the same transaction as the logs of each batch. So a
worker killed mid-batch loses nothing and repeats nothing: the next one
goes on from the cursor (docs/backfill.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.base import UTCDateTime, new_uid, utcnow
from webapp.models.hooks import Hook

BACKFILL, REPLAY = "backfill", "replay"
KINDS = (BACKFILL, REPLAY)
RUNNING, DONE, CANCELLED = "running", "done", "cancelled"
STATES = (RUNNING, DONE, CANCELLED)


class BulkSend(db.Model):
    """One backfill or replay of a hook, and how far it went.

    `created` counts the logs made (backfill) or restarted (replay) so far,
    out of about `total` (counted when requested; a log made meanwhile by a
    live delivery is skipped, so `created` may end lower). `filled_at` is
    when the last batch was made; `finished_at` when nothing of it was left
    to send (then `succeeded` and `failed` keep its final counts, which later
    retries of its logs do not change).
    """

    __tablename__ = "bulk_sends"
    __table_args__ = (
        Index("ix_bulk_sends_hook_created", "hook_id", "date_created"),
        # The sweeper's look for unfinished ones.
        Index("ix_bulk_sends_finished", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=lambda: new_uid("bk"))
    hook_id: Mapped[int] = mapped_column(ForeignKey("hooks.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10), default=RUNNING)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
    # A replay's status filter: ["failed"], ["success"] or both.
    statuses: Mapped[list[str]] = mapped_column(JSON, default=list)
    upper_id: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str] = mapped_column(String(255), default="")
    date_created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    date_modified: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    succeeded: Mapped[int | None] = mapped_column(Integer, default=None)
    failed: Mapped[int | None] = mapped_column(Integer, default=None)

    hook: Mapped[Hook] = relationship()

    def __repr__(self) -> str:
        return f"<BulkSend {self.uid} {self.kind} {self.state}>"
