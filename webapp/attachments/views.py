"""Serving attachments: the signed public link, and the panel's own route.

Both stream the file from its chunks (memory does not grow with its size),
with its content type, `X-Content-Type-Options: nosniff` and a sandboxing
Content-Security-Policy. The public link always downloads
(`Content-Disposition: attachment`); the panel shows raster images inline
(INLINE_TYPES: never SVG, which can carry script) and downloads the rest.
An invalid, altered or expired link answers 403, a deleted file 404.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, abort
from sqlalchemy import select

from webapp.admin.lookups import form_or_404, submission_or_404
from webapp.admin.permissions import protect
from webapp.attachments import links
from webapp.attachments.store import chunks_of
from webapp.extensions import db
from webapp.models import Attachment, Submission

bp = Blueprint("attachments", __name__)
panel_bp = Blueprint("attachment_files", __name__)
protect(panel_bp)

INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
FILE_POLICY = "default-src 'none'; sandbox"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(panel_bp)


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


@bp.get(f"{links.PREFIX}/<token>/<path:filename>")
def download(token: str, filename: str):
    """A file by its signed link: no other credential (docs/attachments.md)."""
    uid = links.verify(token)
    if uid is None:
        return _text(403, "This download link is invalid or has expired.")
    attachment = db.session.scalar(select(Attachment).where(Attachment.uid == uid))
    if attachment is None:
        return _text(404, "This file no longer exists.")
    if attachment.filename != filename:
        return _text(403, "This download link is invalid or has expired.")
    return _serve(attachment, inline=False)


@panel_bp.get("/forms/<form_uid>/submissions/<int:submission_id>/files/<attachment_uid>")
def panel_file(form_uid: str, submission_id: int, attachment_uid: str):
    """A file of a version of the form's submission, for logged-in users."""
    form = form_or_404(form_uid)
    submission = submission_or_404(form, submission_id)
    attachment = db.session.scalar(
        select(Attachment)
        .join(Submission, Submission.id == Attachment.submission_id)
        .where(
            Attachment.uid == attachment_uid,
            Submission.form_id == form.id,
            (Submission.id == submission.id) | (Submission.root_id == submission.id),
        )
    )
    if attachment is None:
        abort(404)
    return _serve(attachment, inline=attachment.mimetype in INLINE_TYPES)


def _serve(attachment: Attachment, *, inline: bool) -> Response:
    response = Response(
        chunks_of(attachment.id, attachment.chunks, db.engine),
        mimetype=attachment.mimetype,
        direct_passthrough=True,
    )
    response.content_length = attachment.size
    response.headers.set(
        "Content-Disposition", "inline" if inline else "attachment", filename=attachment.filename
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_POLICY
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["ETag"] = f'"{attachment.sha256}"'
    db.session.rollback()  # the rows were read: end the transaction before streaming
    return response
