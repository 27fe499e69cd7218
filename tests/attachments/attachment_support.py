"""Helpers for the attachment tests: Collect-style uploads, stored files, a login."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from tests.helpers import fixture_bytes
from tests.ingest.openrosa_clients import Collect, Part, flask_send, multipart
from webapp.attachments.store import chunks_of
from webapp.extensions import db
from webapp.models import Attachment, AttachmentChunk, DeliveryLog, Submission

INSTANCE = fixture_bytes("odk_instance.xml")
INSTANCE_ID = "uuid:9d2e4c71-5b0a-4f3e-8c6d-2a1f7b9e0c35"


def photo(n: int, size: int = 40_000) -> tuple[str, bytes, str]:
    """(file name, bytes, type) of a made-up JPEG; each n has different bytes."""
    return (f"{1700000000000 + n}.jpg", b"\xff\xd8\xff\xe0" + bytes([n % 256]) * size, "image/jpeg")


def webhook(form_uid: str) -> str:
    return f"http://localhost/api/v1/forms/{form_uid}/submissions"


def collect_upload(client, form_uid, token, xml=INSTANCE, files=()):
    """Upload as ODK Collect does (HEAD, Digest, split posts); the server's message."""
    collect = Collect(flask_send(client), username="enumerator", password=token)
    return collect.upload(webhook(form_uid), xml, list(files))


def post_parts(client, form_uid, token, parts: list[Part], **headers):
    """A script's multipart post, asking for JSON answers (docs/openrosa.md)."""
    body, content_type = multipart(parts)
    return client.post(
        f"/api/v1/forms/{form_uid}/submissions?token={token}",
        data=body,
        headers={"Content-Type": content_type, "Accept": "application/json", **headers},
    )


def instance_part(xml: bytes = INSTANCE) -> Part:
    return Part("xml_submission_file", xml, "submission.xml", "text/xml")


def file_part(name: str, data: bytes, content_type: str = "image/jpeg") -> Part:
    return Part(name, data, name, content_type)


def stored_files(app, instance_id: str = INSTANCE_ID) -> dict[str, tuple[str, bytes]]:
    """{file name: (type, bytes read back from the chunks)} of one version."""
    with app.app_context():
        version_id = db.session.scalar(
            select(Submission.id).where(Submission.instance_id == instance_id)
        )
        rows = db.session.scalars(
            select(Attachment).where(Attachment.submission_id == version_id).order_by(Attachment.id)
        ).all()
        return {
            row.filename: (row.mimetype, b"".join(chunks_of(row.id, row.chunks))) for row in rows
        }


def row_counts(app) -> tuple[int, int, int, int]:
    """(submission rows, attachments, chunks, delivery logs)."""
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model))
            for model in (Submission, Attachment, AttachmentChunk, DeliveryLog)
        )


_CSRF = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def logged_in(app, email: str, password: str = "correct horse"):
    """A new test client logged in to the panel as `email`."""
    browser = app.test_client()
    page = browser.get("/login").text
    token = _CSRF.search(page).group(1)
    answer = browser.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 302, answer.text
    return browser
