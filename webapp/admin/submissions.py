"""Submissions of a form: paginated list and detail with the delivery status per hook."""

from __future__ import annotations

import json
from typing import Any

from defusedxml import minidom
from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import and_, or_, select

from webapp.admin.lookups import form_or_404, submission_or_404
from webapp.admin.permissions import protect
from webapp.attachments.listing import rows_of
from webapp.attachments.views import INLINE_TYPES
from webapp.extensions import db
from webapp.models import DeliveryLog, Hook, Submission, form_submission_counts, status_counts
from webapp.models.submissions import (
    current_body_excerpt,
    current_body_size,
    latest_version,
    summary_only,
    version_counts,
    versions_of,
)

bp = Blueprint("submissions", __name__)
protect(bp)

PAGE_SIZE = 50
SHOWN_BYTES = 500_000
#: The list shows this many bytes of each body; the database cuts them.
EXCERPT_BYTES = 120


@bp.get("/forms/<form_uid>/submissions")
def index(form_uid: str):
    """Newest first, keyset-paginated on (created_at, id) like the logs.

    No body is read: each row has its size and first bytes, computed by the
    database, so the page's memory does not grow with body sizes.
    """
    form = form_or_404(form_uid)
    before = request.args.get("before", "")
    # One row per submission: the row it was created with (its versions are
    # counted); size and excerpt are its latest version's.
    latest, is_latest = latest_version()
    stmt = (
        select(
            Submission,
            current_body_size(latest),
            current_body_excerpt(EXCERPT_BYTES, latest),
        )
        .options(summary_only())
        .join(latest, is_latest)
        .where(Submission.form_id == form.id, Submission.root_id.is_(None))
    )
    if before.isdigit():
        anchor = db.session.get(Submission, int(before), options=[summary_only()])
        if anchor is not None and anchor.form_id == form.id:
            stmt = stmt.where(
                or_(
                    Submission.created_at < anchor.created_at,
                    and_(Submission.created_at == anchor.created_at, Submission.id < anchor.id),
                )
            )
    stmt = stmt.order_by(Submission.created_at.desc(), Submission.id.desc()).limit(PAGE_SIZE + 1)
    rows = db.session.execute(stmt).all()
    older = rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None
    rows = [
        (submission, size or 0, excerpt_text(excerpt, size or 0))
        for submission, size, excerpt in rows[:PAGE_SIZE]
    ]
    total = form_submission_counts([form.id])[form.id]
    return render_template(
        "submissions/index.html",
        form=form,
        submissions=rows,
        deliveries=status_counts(DeliveryLog.submission_id, [s.id for s, _, _ in rows]),
        versions=version_counts([s.id for s, _, _ in rows]),
        older=older,
        first_page=not before,
        total=total,
    )


@bp.get("/forms/<form_uid>/submissions/<int:submission_id>")
def detail(form_uid: str, submission_id: int):
    form = form_or_404(form_uid)
    submission = submission_or_404(form, submission_id)
    if submission.root_id is not None:  # a later version: show its submission
        return redirect(
            url_for("submissions.detail", form_uid=form.uid, submission_id=submission.root_id)
        )
    versions = versions_of(submission.id)
    numbers = {version.id: number for number, version in enumerate(versions, start=1)}
    logs = db.session.execute(
        select(DeliveryLog, Hook)
        .join(Hook, Hook.id == DeliveryLog.hook_id)
        .where(DeliveryLog.submission_id.in_(list(numbers)))
        .order_by(Hook.name, Hook.id, DeliveryLog.id)
    ).all()
    return render_template(
        "submissions/detail.html",
        form=form,
        submission=submission,
        logs=logs,
        numbers=numbers,
        versions=[
            {
                "number": numbers[version.id],
                "version": version,
                "changes": changes(versions[i - 1].current_data, version.current_data)
                if i
                else None,
                "text": pretty(version.source_format, version.current_body, version.current_data),
            }
            for i, version in enumerate(versions)
        ]
        if len(versions) > 1
        else [],
        files=rows_of(numbers),  # each version's files (docs/attachments.md)
        inline_types=INLINE_TYPES,
        original=pretty(submission.source_format, submission.body, submission.data),
        current=(
            pretty(submission.source_format, submission.current_body, submission.current_data)
            if submission.edit_count
            else None
        ),
    )


def excerpt_text(excerpt: bytes | None, size: int) -> str:
    """The first bytes of a body for a list: decoded, on one line, "…" when cut."""
    text = " ".join(bytes(excerpt or b"").decode("utf-8", errors="ignore").split())
    return text + "…" if size > EXCERPT_BYTES else text


def changes(before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """(field path, value before, value after) for each field that differs, by path."""
    old, new = _flatten(before), _flatten(after)
    return [
        (path, old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as slash paths (KoboToolbox's flat keys stay as they are)."""
    if not isinstance(value, dict):
        return {prefix or "(value)": value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            flat.update(_flatten(item, path))
        else:
            flat[path] = item
    return flat


def pretty(source_format: str, body: bytes, data: Any) -> str:
    """The submission for reading: indented JSON, or indented XML when it parses safely."""
    if source_format == "xml":
        return _pretty_xml(body[:SHOWN_BYTES])
    try:
        return json.dumps(data, indent=2, ensure_ascii=False)[:SHOWN_BYTES]
    except (TypeError, ValueError):
        return body[:SHOWN_BYTES].decode("utf-8", errors="replace")


def _pretty_xml(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    try:
        document = minidom.parseString(body)  # defusedxml: no entities, no DTD tricks
        _strip_blank_text(document)
        pretty_text = document.toprettyxml(indent="  ")
    except Exception:  # any problem (parse, depth): show it as received
        return text
    return "\n".join(line for line in pretty_text.splitlines() if line.strip())


def _strip_blank_text(node) -> None:
    for child in list(node.childNodes):
        if child.nodeType == child.TEXT_NODE and not child.data.strip():
            node.removeChild(child)
        else:
            _strip_blank_text(child)
