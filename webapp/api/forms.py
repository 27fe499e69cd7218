"""Forms and their stored submissions: `/api/v1/forms...` (docs/api.md).

Submission lists have one item per submission and never read bodies: each
item has its latest version's size, computed by the database, and its
`data` only when that body is at most LIST_DATA_MAX_BYTES
(else `data` is null and `data_omitted` true: the detail route has it).
"""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from webapp.api.common import api_user, bp, fail, get_form, invalid, json_body
from webapp.api.pagination import paginate
from webapp.api.serializers import (
    form_json,
    forms_json,
    submission_detail_json,
    submissions_json,
)
from webapp.extensions import db
from webapp.models import Form, Submission
from webapp.models.submissions import (
    current_body_size,
    current_data_up_to,
    latest_version,
    summary_only,
)

MAX_NAME = 255
#: A listed submission carries its data only up to this body size.
LIST_DATA_MAX_BYTES = 64 * 1024
#: Page size cap of the submission list: at most 100 x 64 KB of data per page.
SUBMISSIONS_MAX_LIMIT = 100
# Sent back unchanged by clients that PATCH what they GET: ignored, as DRF does.
READ_ONLY_FIELDS = frozenset(
    {
        "uid",
        "url",
        "ingest_url",
        "ingest_token",
        "owner",
        "hook_count",
        "submission_count",
        "date_created",
        "date_modified",
    }
)


def clean_form(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The writable fields of a form (only `name`); 400 with errors per field."""
    errors: dict[str, list[str]] = {}
    for field in sorted(set(values) - READ_ONLY_FIELDS - {"name"}):
        errors[field] = ["Unknown field."]
    cleaned: dict[str, Any] = {}
    if "name" in values or creating:
        name = values.get("name")
        if not isinstance(name, str) or not name.strip():
            errors["name"] = ["Enter a name."]
        elif len(name.strip()) > MAX_NAME:
            errors["name"] = [f"At most {MAX_NAME} characters."]
        else:
            cleaned["name"] = name.strip()
    if errors:
        invalid(errors)
    return cleaned


@bp.get("/forms")
def form_list():
    query = (
        select(Form)
        .options(joinedload(Form.owner))
        .order_by(Form.date_created.desc(), Form.id.desc())
    )
    return paginate(
        query,
        lambda rows: forms_json([row[0] for row in rows]),
        count_query=select(func.count()).select_from(Form),
    )


@bp.post("/forms")
def form_create():
    """Create a form owned by the token's user; 201 with the form."""
    cleaned = clean_form(json_body(), creating=True)
    form = Form(name=cleaned["name"], owner=api_user())
    db.session.add(form)
    db.session.commit()
    body = form_json(form)
    return body, 201, {"Location": body["url"]}


@bp.get("/forms/<form_uid>")
def form_detail(form_uid: str):
    return form_json(get_form(form_uid))


@bp.patch("/forms/<form_uid>")
def form_update(form_uid: str):
    form = get_form(form_uid)
    for field, value in clean_form(json_body(), creating=False).items():
        setattr(form, field, value)
    db.session.commit()
    return form_json(form)


@bp.delete("/forms/<form_uid>")
def form_delete(form_uid: str):
    """Delete a form with its hooks, submissions and logs (database cascades)."""
    db.session.delete(get_form(form_uid))
    db.session.commit()
    return Response(status=204)


@bp.get("/forms/<form_uid>/submissions")
def submission_list(form_uid: str):
    """The form's submissions, newest first, one row each (its versions counted).

    GET; POST here is the webhook.
    """
    form = get_form(form_uid)
    # One row per submission: the row it was created with (root_id NULL),
    # with its latest version's size and small data.
    latest, is_latest = latest_version()
    query = (
        select(
            Submission,
            latest,
            current_body_size(latest),
            current_data_up_to(LIST_DATA_MAX_BYTES, latest),
        )
        .options(summary_only(), summary_only(latest))
        .join(latest, is_latest)
        .where(Submission.form_id == form.id, Submission.root_id.is_(None))
        .order_by(Submission.created_at.desc(), Submission.id.desc())
    )
    return paginate(
        query,
        lambda rows: submissions_json(rows, form_uid=form.uid, data_max=LIST_DATA_MAX_BYTES),
        count_query=select(func.count())
        .select_from(Submission)
        .where(Submission.form_id == form.id, Submission.root_id.is_(None)),
        max_limit=SUBMISSIONS_MAX_LIMIT,
    )


@bp.get("/forms/<form_uid>/submissions/<int:submission_id>")
def submission_detail(form_uid: str, submission_id: int):
    """One submission with its data in full, whatever its size, and its versions (oldest first)."""
    form = get_form(form_uid)
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.form_id != form.id or submission.root_id is not None:
        fail(404, f"No submission with id {submission_id} in this form.")
    return submission_detail_json(submission, form_uid=form.uid)
