"""The webhook view: authenticate, read within the size limit, parse, store."""

from __future__ import annotations

import base64
import binascii
import contextlib

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from webapp.dbfaults import is_disconnect
from webapp.extensions import csrf, db
from webapp.ingest import storing as store
from webapp.ingest.parsing import IngestError, instance_id_of, media_kind, parse_body
from webapp.ingest.storing import Refusal, check_form

bp = Blueprint("ingest", __name__)


def _error(status: int, message: str):
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="formhooks", charset="UTF-8"'
    return response


def _presented_token() -> str | None:
    """The ingest token from Bearer, Basic (as password) or ?token=."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep else None
    return request.args.get("token") or None


def _read_body(limit: int) -> bytes:
    """Read at most `limit` bytes; larger bodies are refused while reading."""
    length = request.content_length
    if length is not None and length > limit:
        raise IngestError(413, f"The body is larger than the limit of {limit} bytes.")
    stream = request.stream
    chunks: list[bytes] = []
    received = 0
    while True:
        chunk = stream.read(min(65536, limit + 1 - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
        if received > limit:
            raise IngestError(413, f"The body is larger than the limit of {limit} bytes.")
    return b"".join(chunks)


# Bodies up to this size are parsed before the form and token are checked, so
# that a valid request costs one database round trip; larger or unsized ones
# are checked first, so an unauthenticated sender never makes us read much.
PRECHECK_BYTES = 64 * 1024
RETRY_AFTER_SECONDS = 30

MISSING_TOKEN = (  # a message, not a secret
    "Missing ingest token: send it as 'Authorization: Bearer <token>', "  # noqa: S105
    "as the password of HTTP Basic auth, or as ?token=<token>."
)


def _refused(form_uid: str, refusal: Refusal, token: str | None):
    if refusal is Refusal.NO_FORM:
        return _error(404, f"No form with uid {form_uid!r}.")
    if token is None:
        return _error(401, MISSING_TOKEN)
    return _error(401, "Invalid ingest token for this form.")


@bp.post("/api/v1/forms/<form_uid>/submissions")
@csrf.exempt
def receive(form_uid: str):
    """Authenticate, read, parse and store: 404 and 401 come before body errors."""
    token = _presented_token()
    length = request.content_length
    try:
        checked = token is None or length is None or length > PRECHECK_BYTES
        if checked:
            refusal = check_form(form_uid, token)
            if refusal is not None:
                return _refused(form_uid, refusal, token)
        try:
            kind = media_kind(request.mimetype)
            body = _read_body(current_app.config["MAX_SUBMISSION_BYTES"])
            parsed = parse_body(kind, request.headers.get("Content-Type", ""), body)
            instance_id = instance_id_of(parsed.data, request.headers.get("Idempotency-Key"))
        except IngestError as exc:
            refusal = None if checked else check_form(form_uid, token)
            if refusal is not None:
                return _refused(form_uid, refusal, token)
            return _error(exc.status, exc.message)
        result = store.receive(form_uid, token, instance_id, parsed)
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        with contextlib.suppress(SQLAlchemyError):  # the connection may be gone already
            db.session.rollback()
        current_app.logger.warning("Submission refused with 503: database unavailable: %s", exc)
        response = _error(503, "The database is unavailable; nothing was stored. Retry later.")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    if isinstance(result, Refusal):
        return _refused(form_uid, result, token)
    payload = {
        "id": result.submission_id,
        "instance_id": result.instance_id,
        "created": result.created,
        "deliveries": result.deliveries,
    }
    return jsonify(payload), 201 if result.created else 200
