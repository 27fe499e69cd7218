"""Rows as the API's JSON, with KoboToolbox's field names.

Functions taking a list load what the rows need in one query per kind
(counts by GROUP BY, per-hook log counts from their counters), never one
query per row. Secrets never leave here:
no hook password, custom header values masked, ingest tokens for editors only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select

from webapp.api.common import absolute_url, api_user, isoformat
from webapp.extensions import db
from webapp.models import (
    Attempt,
    DeliveryLog,
    Form,
    Hook,
    Submission,
    form_submission_counts,
    hook_status_counts,
)
from webapp.models.submissions import version_counts, versions_of


def forms_json(forms: Sequence[Form]) -> list[dict[str, Any]]:
    """Forms with their hook and submission counts (two grouped queries in all)."""
    ids = [form.id for form in forms]
    hook_counts = _counts_by(Hook.form_id, ids)
    submission_counts = form_submission_counts(ids)
    show_token = api_user().can_edit
    return [
        {
            "uid": form.uid,
            "name": form.name,
            "url": absolute_url("api.form_detail", form_uid=form.uid),
            "ingest_url": absolute_url("ingest.receive", form_uid=form.uid),
            # The token lets anyone post submissions: a write, so not for viewers.
            "ingest_token": form.ingest_token if show_token else None,
            "owner": form.owner.email,
            "hook_count": hook_counts.get(form.id, 0),
            "submission_count": submission_counts.get(form.id, 0),
            "date_created": isoformat(form.date_created),
            "date_modified": isoformat(form.date_modified),
        }
        for form in forms
    ]


def form_json(form: Form) -> dict[str, Any]:
    return forms_json([form])[0]


def _counts_by(column, ids: Iterable[int]) -> dict[int, int]:
    ids = list(ids)
    if not ids:
        return {}
    return dict(
        db.session.execute(
            select(column, func.count()).where(column.in_(ids)).group_by(column)
        ).all()
    )


def hooks_json(hooks: Sequence[Hook]) -> list[dict[str, Any]]:
    """Hooks with their counts per log status (one query of the counters for all of them)."""
    counts = hook_status_counts(hook.id for hook in hooks)
    return [_hook_json(hook, counts[hook.id]) for hook in hooks]


def hook_json(hook: Hook) -> dict[str, Any]:
    return hooks_json([hook])[0]


def _hook_json(hook: Hook, counts: dict[str, int]) -> dict[str, Any]:
    form_uid = hook.form.uid
    return {
        "uid": hook.uid,
        "url": absolute_url("api.hook_detail", form_uid=form_uid, hook_uid=hook.uid),
        "logs_url": absolute_url("api.log_list", form_uid=form_uid, hook_uid=hook.uid),
        "name": hook.name,
        "endpoint": hook.endpoint,
        "active": hook.active,
        "export_type": hook.export_type,
        "auth_level": hook.auth_level,
        # settings_for_display: username and masked header values; never the password.
        "settings": hook.settings_for_display(),
        "subset_fields": list(hook.subset_fields or []),
        "payload_template": hook.payload_template,
        "send_edits": hook.send_edits,
        "email_notification": hook.email_notification,
        "notification_emails": list(hook.notification_emails or []),
        "success_count": counts["success"],
        "failed_count": counts["failed"],
        "pending_count": counts["pending"],
        "date_created": isoformat(hook.date_created),
        "date_modified": isoformat(hook.date_modified),
    }


def log_json(
    entry: DeliveryLog, instance_id: str, *, form_uid: str, hook_uid: str, detail: bool = False
) -> dict[str, Any]:
    """A delivery log; `submission_id` is the submission's instance id, as in KoboToolbox.

    With `detail`, every attempt of the log is included (oldest first).
    """
    data = {
        "uid": entry.uid,
        "url": absolute_url(
            "api.log_detail", form_uid=form_uid, hook_uid=hook_uid, log_uid=entry.uid
        ),
        "submission_id": instance_id,
        "tries": entry.tries,
        "status": entry.status,
        "status_code": entry.status_code,
        "message": entry.message,
        "date_created": isoformat(entry.date_created),
        "date_modified": isoformat(entry.date_modified),
        "next_retry_at": isoformat(entry.next_retry_at),
    }
    if detail:
        data["attempts"] = [_attempt_json(a) for a in _attempts(entry.id)]
    return data


def _attempts(log_id: int) -> Sequence[Attempt]:
    return db.session.scalars(
        select(Attempt).where(Attempt.log_id == log_id).order_by(Attempt.id)
    ).all()


def _attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "started_at": isoformat(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "status_code": attempt.status_code,
        # null while the attempt is in flight.
        "outcome": attempt.outcome,
        "message": attempt.message,
    }


def submission_json(submission: Submission) -> dict[str, Any]:
    """A stored submission (its first version's row), with its data as last received."""
    return submissions_json([submission])[0]


def submissions_json(submissions: Sequence[Submission]) -> list[dict[str, Any]]:
    """Submissions with their version counts and latest data (two queries for all).

    `data` and `content_type` are those of the latest version, as last
    received; `instance_id` is the submission's first (`root_instance_id`).
    """
    counts = version_counts([s.id for s in submissions])
    edited = [s.id for s in submissions if counts[s.id] > 1]
    latest: dict[int, Submission] = {}
    if edited:
        for version in db.session.scalars(
            select(Submission)
            .where(Submission.root_id.in_(edited), Submission.received.is_(True))
            .order_by(Submission.position, Submission.id)
        ):
            latest[version.root_id] = version  # the last one in order wins
    results = []
    for submission in submissions:
        last = latest.get(submission.id, submission)
        results.append(
            {
                "id": submission.id,
                "instance_id": submission.instance_id,
                "root_instance_id": submission.root_instance_id,
                "versions": counts[submission.id],
                "source_format": last.source_format,
                "content_type": last.current_content_type,
                "data": last.current_data,
                "edit_count": submission.edit_count,
                "date_created": isoformat(submission.created_at),
                "date_modified": isoformat(max(last.updated_at, submission.updated_at)),
            }
        )
    return results


def submission_detail_json(submission: Submission) -> dict[str, Any]:
    """A submission with each of its versions, oldest first, and their data."""
    data = submission_json(submission)
    data["versions"] = [
        {
            "number": number,
            "instance_id": version.instance_id,
            "deprecated_id": version.deprecated_id,
            "source_format": version.source_format,
            "content_type": version.current_content_type,
            "date_created": isoformat(version.created_at),
            "date_modified": isoformat(version.updated_at),
            "edit_count": version.edit_count,
            "data": version.current_data,
        }
        for number, version in enumerate(versions_of(submission.id), start=1)
    ]
    return data
