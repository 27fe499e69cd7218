"""Attachments as hooks and the API list them: KoboToolbox's `_attachments` shape.

Each entry has `filename` (the name as the instance has it), `mimetype`,
`size` (bytes), `download_url` (a signed link: webapp.attachments.links),
and, as KoboToolbox's entries have them, `media_file_basename` (the same
name) and `uid`. README ("What a hook sends") and docs/attachments.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from webapp.attachments.links import download_url
from webapp.extensions import db
from webapp.models import Attachment

FIELD = "_attachments"


def describe(attachment: Any, at: float | None = None) -> dict[str, Any]:
    """The entry of one attachment (a row with uid, filename, mimetype, size)."""
    return {
        "uid": attachment.uid,
        "filename": attachment.filename,
        "media_file_basename": attachment.filename,
        "mimetype": attachment.mimetype,
        "size": attachment.size,
        "download_url": download_url(attachment.uid, attachment.filename, at),
    }


def files_of(version_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """{version id: its entries, in the order received} for the versions with files."""
    ids = set(version_ids)
    found: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return found
    rows = db.session.execute(
        select(
            Attachment.submission_id,
            Attachment.uid,
            Attachment.filename,
            Attachment.mimetype,
            Attachment.size,
        )
        .where(Attachment.submission_id.in_(ids))
        .order_by(Attachment.submission_id, Attachment.id)
    )
    for row in rows:
        found.setdefault(row.submission_id, []).append(describe(row))
    return found


def rows_of(version_ids: Iterable[int]) -> list[Attachment]:
    """The attachment rows of some versions, by version then as received (the panel)."""
    ids = list(version_ids)
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Attachment)
            .where(Attachment.submission_id.in_(ids))
            .order_by(Attachment.submission_id, Attachment.id)
        )
    )


def with_attachments(data: Any, files: list[dict[str, Any]] | None) -> Any:
    """`data` with `_attachments` listing `files` (a version's entries), for JSON payloads.

    Data of a version with no file is returned as it is (a JSON submission
    is then still sent byte for byte). The field comes before the subset
    rule and the wrapper, which treat it like any other field; it replaces
    an `_attachments` the data had (such as KoboToolbox's own links).
    """
    if not files or not isinstance(data, dict):
        return data
    return {**data, FIELD: files}
