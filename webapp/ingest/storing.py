"""Looking up the form and storing a submission with its pending delivery logs.

The hot path of the webhook: Core statements, not ORM units of work. One
query finds the form, its token digest and its active hooks; one INSERT
stores the submission, one the logs, and one commit makes them durable
before the 201.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import IntegrityError

from webapp.crypto import token_matches
from webapp.delivery import feed
from webapp.extensions import db
from webapp.ingest.parsing import ParsedSubmission
from webapp.models import DeliveryLog, Form, Hook, Submission
from webapp.models.base import new_uid, utcnow


@dataclass(frozen=True)
class IngestForm:
    """What the webhook needs of a form."""

    id: int
    token_hash: str
    active_hook_ids: tuple[int, ...]

    def check_token(self, candidate: str) -> bool:
        return token_matches(candidate, self.token_hash)


def find_form(form_uid: str) -> IngestForm | None:
    """The form with `form_uid` and its active hooks, in one query."""
    rows = db.session.execute(
        select(Form.id, Form.ingest_token_hash, Hook.id)
        .outerjoin(Hook, and_(Hook.form_id == Form.id, Hook.active.is_(True)))
        .where(Form.uid == form_uid)
        .order_by(Hook.id)
    ).all()
    if not rows:
        return None
    hook_ids = tuple(row[2] for row in rows if row[2] is not None)
    return IngestForm(rows[0][0], rows[0][1], hook_ids)


@dataclass(frozen=True)
class StoreResult:
    submission_id: int
    instance_id: str
    created: bool
    deliveries: int


def store_submission(form: IngestForm, instance_id: str, parsed: ParsedSubmission) -> StoreResult:
    """Create the submission and one pending log per active hook, or record an edit.

    The rows are committed before the logs go to the delivery feed, so a
    worker never looks for a row that is not there yet; if Redis cannot be
    reached, the logs stay due and the sweeper sends them. An edit (a known
    instance id) updates the stored data and sends nothing.
    """
    now = utcnow()
    try:
        submission_id = db.session.scalar(
            insert(Submission)
            .values(
                form_id=form.id,
                instance_id=instance_id,
                source_format=parsed.source_format,
                content_type=parsed.content_type,
                body=parsed.body,
                data=parsed.data,
                created_at=now,
                updated_at=now,
                edit_count=0,
            )
            .returning(Submission.id)
        )
    except IntegrityError:
        db.session.rollback()
        return _record_edit(form, instance_id, parsed)
    log_ids: list[int] = []
    if form.active_hook_ids:
        rows = [
            {
                "uid": new_uid("hl"),
                "hook_id": hook_id,
                "submission_id": submission_id,
                "status": "pending",
                "tries": 0,
                "message": "",
                "date_created": now,
                "date_modified": now,
                "next_retry_at": now,
            }
            for hook_id in form.active_hook_ids
        ]
        log_ids = list(db.session.scalars(insert(DeliveryLog).returning(DeliveryLog.id), rows))
    db.session.commit()
    feed.push(log_ids)
    return StoreResult(submission_id, instance_id, True, len(log_ids))


def _record_edit(form: IngestForm, instance_id: str, parsed: ParsedSubmission) -> StoreResult:
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
