"""Storing a parsed submission and its pending delivery logs in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from webapp.delivery import feed
from webapp.extensions import db
from webapp.ingest.parsing import ParsedSubmission
from webapp.models import DeliveryLog, Form, Hook, Submission
from webapp.models.base import new_uid, utcnow


@dataclass(frozen=True)
class StoreResult:
    submission_id: int
    instance_id: str
    created: bool
    deliveries: int


def store_submission(form: Form, instance_id: str, parsed: ParsedSubmission) -> StoreResult:
    """Create the submission and one pending log per active hook, or record an edit.

    The rows are committed before any job is queued, so a worker never looks
    for a row that is not there yet; if queueing fails, the logs stay due and
    the sweeper sends them. An edit (known instance id) updates the stored
    data and sends nothing.
    """
    now = utcnow()
    try:
        submission = Submission(
            form_id=form.id,
            instance_id=instance_id,
            source_format=parsed.source_format,
            content_type=parsed.content_type,
            body=parsed.body,
            data=parsed.data,
            created_at=now,
            updated_at=now,
        )
        db.session.add(submission)
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return _record_edit(form, instance_id, parsed)
    hook_ids = db.session.scalars(
        select(Hook.id).where(Hook.form_id == form.id, Hook.active.is_(True)).order_by(Hook.id)
    ).all()
    log_ids: list[int] = []
    if hook_ids:
        rows = [
            {
                "uid": new_uid("hl"),
                "hook_id": hook_id,
                "submission_id": submission.id,
                "status": "pending",
                "tries": 0,
                "message": "",
                "date_created": now,
                "date_modified": now,
                "next_retry_at": now,
            }
            for hook_id in hook_ids
        ]
        log_ids = list(db.session.scalars(insert(DeliveryLog).returning(DeliveryLog.id), rows))
    submission_id = submission.id
    db.session.commit()
    feed.push(log_ids)
    return StoreResult(submission_id, instance_id, True, len(log_ids))


def _record_edit(form: Form, instance_id: str, parsed: ParsedSubmission) -> StoreResult:
    submission_id = db.session.scalar(
        update(Submission)
        .where(Submission.form_id == form.id, Submission.instance_id == instance_id)
        .values(
            edited_body=parsed.body,
            edited_content_type=parsed.content_type,
            edited_data=parsed.data,
            edit_count=Submission.edit_count + 1,
            updated_at=utcnow(),
        )
        .returning(Submission.id)
    )
    db.session.commit()
    return StoreResult(submission_id, instance_id, False, 0)
