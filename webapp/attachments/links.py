"""Signed download links: a receiver fetches a file with no other credential.

A link carries the attachment's uid signed with itsdangerous (keyed from
SECRET_KEY, with a salt of its own, so no other signed value of the app can
pass for one) and the time it was signed; it works for ATTACHMENT_URL_TTL
seconds. Each delivery attempt builds its payload anew, so every retry
carries fresh links. Links are absolute, on BASE_URL, else on the root of
the request being served, else (a worker with no BASE_URL) on
http://127.0.0.1:PORT, as emails do.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, has_request_context, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "formhooks.attachment-link"
PREFIX = "/attachments"  # the download route's path, before the token


class _SignedAt(URLSafeTimedSerializer):
    """A serializer whose signer stamps a given time instead of now."""

    def __init__(self, secret_key: str, at: int) -> None:
        super().__init__(secret_key, salt=SALT)
        self._at = at

    def make_signer(self, salt=None):
        signer = super().make_signer(salt)
        signer.get_timestamp = lambda: self._at
        return signer


def _serializer(at: float | None = None) -> URLSafeTimedSerializer:
    key = current_app.config["SECRET_KEY"]
    if at is None:
        return URLSafeTimedSerializer(key, salt=SALT)
    return _SignedAt(key, int(at))


def sign(attachment_uid: str, at: float | None = None) -> str:
    """A token for `attachment_uid`, signed now (or at the Unix time `at`)."""
    return _serializer(at).dumps(attachment_uid)


def verify(token: str) -> str | None:
    """The attachment uid a valid, unexpired token names; None otherwise."""
    try:
        uid = _serializer().loads(token, max_age=current_app.config["ATTACHMENT_URL_TTL"])
    except (SignatureExpired, BadSignature):
        return None
    return uid if isinstance(uid, str) else None


def base_url() -> str:
    """BASE_URL, else this request's root, else the local address (a worker)."""
    configured = current_app.config["BASE_URL"]
    if configured:
        return configured
    if has_request_context():
        return request.url_root.rstrip("/")
    return f"http://127.0.0.1:{current_app.config['PORT']}"


def download_url(attachment_uid: str, filename: str, at: float | None = None) -> str:
    """The absolute signed link to download an attachment (works for the TTL).

    The file name ends the path for receivers that name files after URLs;
    the download checks it too (webapp.attachments.views).
    """
    token = sign(attachment_uid, at)
    return f"{base_url()}{PREFIX}/{token}/{quote(filename, safe='')}"
