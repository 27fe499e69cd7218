"""A form's source: `GET|PUT|DELETE /api/v1/forms/<form_uid>/source` (docs/central.md).

Validation is webapp.sources.settings', the same as the panel's Source tab.
The password is write-only; status fields are read-only (ignored when sent
back, as for hooks).
"""

from __future__ import annotations

from typing import Any

from flask import Response

from webapp.api.common import bp, fail, get_form, invalid, isoformat, json_body
from webapp.extensions import db
from webapp.models import Source
from webapp.sources.settings import clean_source_settings, save_source
from webapp.validation import english_errors


def source_json(source: Source) -> dict[str, Any]:
    """The source as the API shows it: no password, no session token, no cursors."""
    return {
        "uid": source.uid,
        "kind": source.kind,
        "url": source.url,
        "project_id": source.project_id,
        "xml_form_id": source.xml_form_id,
        "email": source.email,
        "since": isoformat(source.since),
        "active": source.active,
        "send_backfill": source.send_backfill,
        "connected_at": isoformat(source.connected_at),
        "status": source.status,
        "error_code": source.error_code,
        "last_error": source.last_error,
        "last_polled_at": isoformat(source.last_polled_at),
        "next_poll_at": isoformat(source.next_poll_at),
        "received_count": source.received_count,
    }


@bp.get("/forms/<form_uid>/source")
def source_detail(form_uid: str):
    form = get_form(form_uid)
    if form.source is None:
        fail(404, f"Form {form_uid!r} has no source.")
    return source_json(form.source)


@bp.put("/forms/<form_uid>/source")
def source_put(form_uid: str):
    """Connect the form to a Central form (201), or change its source (200)."""
    form = get_form(form_uid)
    cleaned, problems = clean_source_settings(json_body(), source=form.source)
    if problems:
        invalid(english_errors(problems))
    source, created = save_source(form, cleaned)
    db.session.commit()
    return source_json(source), 201 if created else 200


@bp.delete("/forms/<form_uid>/source")
def source_delete(form_uid: str):
    """Disconnect: nothing more is fetched; what was stored stays."""
    form = get_form(form_uid)
    if form.source is None:
        fail(404, f"Form {form_uid!r} has no source.")
    db.session.delete(form.source)
    db.session.commit()
    return Response(status=204)
