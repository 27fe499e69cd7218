"""Starting a backfill or a replay: count what it covers, record it, kick the fill job.

Nothing is sent from the request: the logs are made in batches by the fill
job (webapp.bulk.fill). The set a bulk send covers is fixed here by
`upper_id`: a backfill takes the submissions stored so far (later ones are
sent live), a replay the logs made so far.
"""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import func, select

from webapp.bulk.batches import backfill_candidates, replay_candidates
from webapp.bulk.fill import kick
from webapp.bulk.ranges import Range
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook, Submission
from webapp.models.base import utcnow
from webapp.models.bulk import BACKFILL, DONE, REPLAY, BulkSend


def start_backfill(hook: Hook, wanted: Range, requested_by: str) -> BulkSend:
    """Send `hook` the form's submissions of the range it has no log for. Commits."""
    upper = db.session.scalar(
        select(func.max(Submission.id)).where(Submission.form_id == hook.form_id)
    )
    return _start(hook, BACKFILL, wanted, upper or 0, requested_by)


def start_replay(hook: Hook, wanted: Range, requested_by: str) -> BulkSend:
    """Send again `hook`'s logs of the range with one of `wanted.statuses`. Commits."""
    upper = db.session.scalar(
        select(func.max(DeliveryLog.id)).where(DeliveryLog.hook_id == hook.id)
    )
    return _start(hook, REPLAY, wanted, upper or 0, requested_by)


def _start(hook: Hook, kind: str, wanted: Range, upper: int, requested_by: str) -> BulkSend:
    now = utcnow()
    scope = SimpleNamespace(
        hook_id=hook.id,
        since=wanted.since,
        until=wanted.until,
        statuses=wanted.statuses,
        cursor=0,
        upper_id=upper,
        date_created=now,
    )
    candidates = backfill_candidates if kind == BACKFILL else replay_candidates
    total = db.session.scalar(candidates(scope, counted=True)) or 0
    bulk = BulkSend(
        hook_id=hook.id,
        kind=kind,
        since=wanted.since,
        until=wanted.until,
        statuses=list(wanted.statuses),
        upper_id=upper,
        total=total,
        requested_by=requested_by[:255],
        date_created=now,
        date_modified=now,
    )
    if total == 0:  # nothing to do: finished already
        bulk.state, bulk.filled_at, bulk.finished_at = DONE, now, now
        bulk.succeeded = bulk.failed = 0
    db.session.add(bulk)
    db.session.commit()
    if total:
        kick()  # if Redis refused, the sweeper kicks it
    return bulk
