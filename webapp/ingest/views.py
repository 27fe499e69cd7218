"""The webhook view: authenticate, read within the size limit, parse, store."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, current_app, jsonify, request

from webapp.extensions import csrf
from webapp.ingest.parsing import IngestError, instance_id_of, media_kind, parse_body
from webapp.ingest.storing import find_form, store_submission

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


@bp.post("/api/v1/forms/<form_uid>/submissions")
@csrf.exempt
def receive(form_uid: str):
    form = find_form(form_uid)
    if form is None:
        return _error(404, f"No form with uid {form_uid!r}.")
    token = _presented_token()
    if token is None:
        return _error(
            401,
            "Missing ingest token: send it as 'Authorization: Bearer <token>', "
            "as the password of HTTP Basic auth, or as ?token=<token>.",
        )
    if not form.check_token(token):
        return _error(401, "Invalid ingest token for this form.")
    try:
        kind = media_kind(request.mimetype)
        body = _read_body(current_app.config["MAX_SUBMISSION_BYTES"])
        parsed = parse_body(kind, request.headers.get("Content-Type", ""), body)
        instance_id = instance_id_of(parsed.data, request.headers.get("Idempotency-Key"))
    except IngestError as exc:
        return _error(exc.status, exc.message)
    result = store_submission(form, instance_id, parsed)
    payload = {
        "id": result.submission_id,
        "instance_id": result.instance_id,
        "created": result.created,
        "deliveries": result.deliveries,
    }
    return jsonify(payload), 201 if result.created else 200
