"""The webhook view: authenticate, read within the size limit, parse, store."""

from __future__ import annotations

import base64
import binascii
import contextlib
import time

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from webapp.dbfaults import is_disconnect
from webapp.extensions import csrf, db
from webapp.ingest import openrosa
from webapp.ingest import storing as store
from webapp.ingest.identity import DEPRECATED_HEADER, edit_refs_of
from webapp.ingest.parsing import IngestError, instance_id_of, media_kind, parse_body
from webapp.ingest.storing import Refusal, check_form
from webapp.request_body import BodyReadTimeout, IncompleteBody

bp = Blueprint("ingest", __name__)


def _error(status: int, message: str):
    """JSON `{"error"}`, or an OpenRosaResponse for OpenRosa clients; 401s challenge."""
    if openrosa.is_openrosa():
        response = openrosa.answer(status, message)
    else:
        response = jsonify(error=message)
        response.status_code = status
    if status == 401:
        form_uid = (request.view_args or {}).get("form_uid", "")
        stale = g.get("digest_stale", False)
        for value in openrosa.challenges(form_uid, stale=stale):
            response.headers.add("WWW-Authenticate", value)
    return response


def _credential(form_uid: str) -> str | None:
    """The presented ingest token; a Digest response (docs/openrosa.md) gives it too.

    A Digest response that is wrong gives "" (a token no form has), so the
    refusal says "invalid" rather than "missing".
    """
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() != "digest ":
        return _presented_token()
    checked = openrosa.digest_token(form_uid, time.time())
    g.digest_stale = checked.stale
    return checked.token or request.args.get("token") or ""


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
    """Read at most `limit` bytes; larger bodies are refused while reading.

    A body cut short (400) or stalled (408) is refused as well: see
    webapp/request_body.py, which guards every request's input stream.
    """
    length = request.content_length
    if length is not None and length > limit:
        raise IngestError(413, f"The body is larger than the limit of {limit} bytes.")
    try:
        return _read_stream(request.stream, limit)
    except (IncompleteBody, BodyReadTimeout) as exc:
        raise IngestError(exc.code, exc.description) from None


def _read_stream(stream, limit: int) -> bytes:
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


def _discard_body(limit: int) -> None:
    """Read and drop the body, at most `limit` + 1 bytes, before a refusal.

    OpenRosa clients read the answer only once they have sent the whole body
    (docs/openrosa.md); nothing is kept or parsed.
    """
    length = request.content_length
    if length is not None and length > limit:
        return
    received = 0
    with contextlib.suppress(OSError, ValueError):  # the client went away: answer anyway
        while received <= limit:
            chunk = request.stream.read(min(65536, limit + 1 - received))
            if not chunk:
                return
            received += len(chunk)


# Bodies up to this size are parsed before the form and token are checked, so
# that a valid request costs one database round trip; larger or unsized ones
# are checked first, so an unauthenticated sender never makes us parse or keep
# much (its body is only read and dropped, so that it can read the refusal).
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


def _unavailable():
    with contextlib.suppress(SQLAlchemyError):  # the connection may be gone already
        db.session.rollback()
    response = _error(503, "The database is unavailable; nothing was stored. Retry later.")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@bp.post("/api/v1/forms/<form_uid>/submissions")
@csrf.exempt
def receive(form_uid: str):
    """Authenticate, read, parse and store: 404 and 401 come before body errors."""
    length = request.content_length
    try:
        token = _credential(form_uid)
        checked = token is None or length is None or length > PRECHECK_BYTES
        if checked:
            refusal = check_form(form_uid, token)
            if refusal is not None:
                _discard_body(current_app.config["MAX_SUBMISSION_BYTES"])
                return _refused(form_uid, refusal, token)
        try:
            kind = media_kind(request.mimetype)
            body = _read_body(current_app.config["MAX_SUBMISSION_BYTES"])
            parsed = parse_body(kind, request.headers.get("Content-Type", ""), body)
            instance_id = instance_id_of(parsed.data, request.headers.get("Idempotency-Key"))
            refs = edit_refs_of(parsed.data, instance_id, request.headers.get(DEPRECATED_HEADER))
            result = store.receive(form_uid, token, instance_id, parsed, refs)  # 409: a file
        except IngestError as exc:
            refusal = None if checked else check_form(form_uid, token)
            if refusal is not None:
                return _refused(form_uid, refusal, token)
            return _error(exc.status, exc.message)
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        current_app.logger.warning("Submission refused with 503: database unavailable: %s", exc)
        return _unavailable()
    if isinstance(result, Refusal):
        return _refused(form_uid, result, token)
    if openrosa.is_openrosa():
        return openrosa.received(result.created, result.deliveries)
    payload = {
        "id": result.submission_id,
        "instance_id": result.instance_id,
        "created": result.created,
        "deliveries": result.deliveries,
    }
    if result.edit_of is not None:
        payload["edit_of"] = result.edit_of
    return jsonify(payload), 201 if result.created else 200


@bp.route("/api/v1/forms/<form_uid>/submissions", methods=["HEAD"])
def probe(form_uid: str):
    """OpenRosa's HEAD before a POST (docs/openrosa.md): 204 when the token is good, else 401."""
    try:
        token = _credential(form_uid)
        refusal = check_form(form_uid, token)
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        return _unavailable()
    if refusal is not None:
        return _refused(form_uid, refusal, token)
    return openrosa.head_ok()
