"""Helpers for the retention tests: posts, aged rows, table counts, runs."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, update

from tests.attachments.attachment_support import INSTANCE, INSTANCE_ID, collect_upload, photo
from webapp.extensions import db
from webapp.models import (
    Attachment,
    AttachmentChunk,
    Attempt,
    DeliveryLog,
    Form,
    RetentionRun,
    Submission,
)
from webapp.models.base import utcnow

TABLES = {
    "submissions": Submission,
    "logs": DeliveryLog,
    "attempts": Attempt,
    "files": Attachment,
    "chunks": AttachmentChunk,
}


def post(client, form_uid: str, token: str, instance_id: str, q=1, **meta):
    """A nested JSON submission (meta/deprecatedID etc. from `meta`); the response."""
    body = {"q": q, "meta": {"instanceID": instance_id, **meta}}
    response = client.post(
        f"/api/v1/forms/{form_uid}/submissions",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response


def post_with_photos(client, form_uid: str, token: str, instance_id: str, photos: int = 2):
    """An ODK Collect upload of the fixture instance under `instance_id`, with photos."""
    xml = INSTANCE.replace(INSTANCE_ID.encode(), instance_id.encode())
    files = [photo(n, size=300_000) for n in range(photos)]  # 2 chunks each
    message = collect_upload(client, form_uid, token, xml=xml, files=files)
    assert message.startswith("Submission received."), message


def age(app, instance_ids, days: float) -> None:
    """Make these versions `days` old: received, and last changed, then."""
    with app.app_context():
        then = utcnow() - timedelta(days=days)
        db.session.execute(
            update(Submission)
            .where(Submission.instance_id.in_(list(instance_ids)))
            .values(created_at=then, updated_at=then)
        )
        db.session.commit()


def age_logs(app, days: float, *where) -> None:
    """Make the matching logs last changed, and their attempts started, `days` ago."""
    with app.app_context():
        then = utcnow() - timedelta(days=days)
        ids = list(db.session.scalars(select(DeliveryLog.id).where(*where)))
        db.session.execute(
            update(DeliveryLog).where(DeliveryLog.id.in_(ids)).values(date_modified=then)
        )
        db.session.execute(update(Attempt).where(Attempt.log_id.in_(ids)).values(started_at=then))
        db.session.commit()


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            name: db.session.scalar(select(func.count()).select_from(model))
            for name, model in TABLES.items()
        }


def instance_ids(app) -> set[str]:
    """Every stored version's instance id (placeholders included)."""
    with app.app_context():
        return set(db.session.scalars(select(Submission.instance_id)))


def form_id(app, form_uid: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Form.id).where(Form.uid == form_uid))


def run(app, **options):
    """One run of the retention job in `app` (see runs.run_retention)."""
    from webapp.retention.runs import run_retention

    with app.app_context():
        return run_retention("command", **options)


def recorded_runs(app) -> list[RetentionRun]:
    with app.app_context():
        rows = db.session.scalars(select(RetentionRun).order_by(RetentionRun.id)).all()
        db.session.expunge_all()
        return rows
