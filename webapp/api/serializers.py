"""Rows as the API's JSON, with KoboToolbox's field names.

Functions taking a list load what the rows need in one query per kind
(counts by GROUP BY, per-hook log counts from their counters), never one
query per row. Secrets never leave here:
no hook password, custom header values masked, ingest tokens and hook signing
secrets for editors only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, func, select

from webapp.api.common import absolute_url, api_user, isoformat
from webapp.attachments.listing import files_of
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
    show_secret = api_user().can_edit
    return [_hook_json(hook, counts[hook.id], show_secret) for hook in hooks]


def hook_json(hook: Hook) -> dict[str, Any]:
    return hooks_json([hook])[0]


def _hook_json(hook: Hook, counts: dict[str, int], show_secret: bool) -> dict[str, Any]:
    form_uid = hook.form.uid
    body = {
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
    # Whoever holds the secret can forge deliveries: editors and admins only
    # (the key is absent for viewers, as KoboToolbox omits what a role may not see).
    if show_secret:
        hook.ensure_signing_secret()
        body["signing_secret"] = hook.readable_signing_secret()
    return body


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


def submissions_json(rows: Sequence[Row], *, form_uid: str, data_max: int) -> list[dict[str, Any]]:
    """Listed submissions with their version counts (one more query for all).

    Each row is (submission, its latest version, that version's body size,
    its data or None when the body is over `data_max` bytes), all read by
    one query that loads no body (see webapp/api/forms.py).
    """
    counts = version_counts([row[0].id for row in rows])
    files = files_of(latest.id for _, latest, _, _ in rows)  # the latest versions'
    return [
        _submission_json(
            submission,
            latest,
            form_uid=form_uid,
            versions=counts[submission.id],
            size=size or 0,
            data=data,
            omitted=(size or 0) > data_max,
            attachments=files.get(latest.id, []),
        )
        for submission, latest, size, data in rows
    ]


def submission_detail_json(submission: Submission, *, form_uid: str) -> dict[str, Any]:
    """A submission with its latest data in full and each version, oldest first, with its data."""
    versions = versions_of(submission.id) or [submission]
    latest = versions[-1]
    files = files_of(version.id for version in versions)
    result = _submission_json(
        submission,
        latest,
        form_uid=form_uid,
        versions=len(versions),
        size=len(latest.current_body or b""),
        data=latest.current_data,
        omitted=False,
        attachments=files.get(latest.id, []),
    )
    result["versions"] = [
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
            "attachments": files.get(version.id, []),
        }
        for number, version in enumerate(versions, start=1)
    ]
    return result


def _submission_json(
    submission: Submission,
    latest: Submission,
    *,
    form_uid: str,
    versions: int,
    size: int,
    data: Any,
    omitted: bool,
    attachments: list[dict[str, Any]],
) -> dict[str, Any]:
    """A submission (its first version's row) with its latest version as last received.

    `instance_id` is its current (latest) version's, `root_instance_id` the
    one it was created with; `size`, `data`, `source_format`, `content_type`
    and `attachments` are the latest version's. `data` is None when
    `omitted` (lists leave out big data: `url` gives it).
    """
    return {
        "id": submission.id,
        "url": absolute_url(
            "api.submission_detail", form_uid=form_uid, submission_id=submission.id
        ),
        "instance_id": latest.instance_id,
        "root_instance_id": submission.root_instance_id,
        "versions": versions,
        "source_format": latest.source_format,
        "content_type": latest.current_content_type,
        "size": size,
        "data": None if omitted else data,
        "data_omitted": omitted,
        "attachments": attachments,
        "edit_count": submission.edit_count,
        "date_created": isoformat(submission.created_at),
        "date_modified": isoformat(max(latest.updated_at, submission.updated_at)),
    }
