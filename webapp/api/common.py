"""The API blueprint and what every route shares: token auth, errors, JSON in, URLs out.

Auth is `Authorization: Token <api token>` only. The session cookie of the
admin panel is never looked at here, so the API has no CSRF exposure and a
browser cannot be tricked into calling it. A token acts with its user's
role: viewers may only read (GET, HEAD).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlencode

from flask import Blueprint, current_app, g, jsonify, request, url_for
from sqlalchemy import or_, select, update
from werkzeug.exceptions import HTTPException

from webapp.crypto import token_digest
from webapp.extensions import db
from webapp.models import ApiToken, Form, Hook, User
from webapp.models.base import utcnow
from webapp.validation import Problem, iso_moment

bp = Blueprint("api", __name__, url_prefix="/api/v1")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# last_used_at is a hint for humans ("used 3 minutes ago"), not an audit
# trail: writing it at most once a minute spares a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_BODY_BYTES = 1024 * 1024
# Endpoints that answer without a token (the API's own description).
PUBLIC_ENDPOINTS = frozenset({"api.openapi"})

Errors = dict[str, list[str]]


class ApiError(Exception):
    """Ends a request with `status` and a JSON body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def fail(status: int, message: str) -> NoReturn:
    """Raise an `{"error": message}` answer."""
    raise ApiError(status, {"error": message})


def invalid(errors: Errors) -> NoReturn:
    """Raise a 400 `{"errors": {field: [messages]}}` answer."""
    raise ApiError(400, {"errors": errors})


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    response = jsonify(exc.body)
    response.status_code = exc.status
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Token realm="formhooks"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    response = jsonify(error=exc.description or exc.name)
    response.status_code = exc.code or 500
    return response


@bp.before_request
def _authenticate() -> None:
    """Find the token's user (401 without one), refuse writes to viewers (403)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    plaintext = value.strip()
    if scheme.lower() != "token" or not plaintext:
        fail(401, "Authentication credentials were not provided: 'Authorization: Token <key>'.")
    user = ApiToken.authenticate(plaintext)
    if user is None:
        fail(401, "Invalid token.")
    _touch_token(token_digest(plaintext))
    g.api_user = user
    if request.method not in READ_METHODS and not user.can_edit:
        fail(403, f"Your role ({user.role}) can only read; ask an admin for the editor role.")


@bp.after_request
def _no_store(response):
    # Answers carry ingest tokens and submission data: no cache may keep them.
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _touch_token(digest: str) -> None:
    """Record the token's use, at most once per LAST_USED_RESOLUTION."""
    now = utcnow()
    last_used = db.session.scalar(
        select(ApiToken.last_used_at).where(ApiToken.token_hash == digest)
    )
    if last_used is not None and now - last_used < LAST_USED_RESOLUTION:
        return
    # Conditional, so concurrent requests of the same minute write once.
    db.session.execute(
        update(ApiToken)
        .where(
            ApiToken.token_hash == digest,
            or_(
                ApiToken.last_used_at.is_(None),
                ApiToken.last_used_at < now - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def api_user() -> User:
    """The user whose token authenticated this request."""
    return g.api_user


def json_body() -> dict[str, Any]:
    """The request body as a JSON object; 400 (non_field_errors) otherwise."""
    raw = _read_body(MAX_BODY_BYTES)
    try:
        value = json.loads(raw or b"{}", parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        invalid({"non_field_errors": [f"Malformed JSON: {exc}"]})
    except RecursionError:
        invalid({"non_field_errors": ["Malformed JSON: nested too deeply."]})
    if not isinstance(value, dict):
        invalid({"non_field_errors": ["The body must be a JSON object."]})
    return value


def _read_body(limit: int) -> bytes:
    """At most `limit` bytes of body, or 413 (checked while reading: chunked bodies too)."""
    too_large = f"The body is larger than {limit} bytes."
    if request.content_length is not None and request.content_length > limit:
        fail(413, too_large)
    chunks, received = [], 0
    while chunk := request.stream.read(min(65536, limit + 1 - received)):
        chunks.append(chunk)
        received += len(chunk)
        if received > limit:
            fail(413, too_large)
    return b"".join(chunks)


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def get_form(form_uid: str) -> Form:
    form = db.session.scalar(select(Form).where(Form.uid == form_uid))
    if form is None:
        fail(404, f"No form with uid {form_uid!r}.")
    return form


def get_hook(form_uid: str, hook_uid: str) -> Hook:
    hook = db.session.scalar(
        select(Hook).join(Form).where(Form.uid == form_uid, Hook.uid == hook_uid)
    )
    if hook is None:
        fail(404, f"No hook with uid {hook_uid!r} in form {form_uid!r}.")
    return hook


def base_url() -> str:
    """BASE_URL when set, else the root of the app as this request reached it."""
    return current_app.config["BASE_URL"] or request.url_root.rstrip("/")


def absolute_url(endpoint: str, **values: Any) -> str:
    """An absolute URL for `endpoint`, on BASE_URL when it is set."""
    path = url_for(endpoint, **values)
    return base_url() + path[len(request.script_root) :]


def request_url_with(**args: Any) -> str:
    """This request's absolute URL with some query arguments replaced."""
    query = request.args.copy()
    for name, value in args.items():
        query[name] = str(value)
    return f"{base_url()}{request.path}?{urlencode(list(query.items(multi=True)))}"


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`, e.g. `2024-05-01T10:00:00.123456Z`."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_when(raw: str, field: str, *, end: bool = False) -> datetime:
    """An ISO 8601 date or date-time from a query argument (webapp.validation.iso_moment)."""
    try:
        return iso_moment(raw, end=end)
    except ValueError:
        invalid({field: [Problem(field, "moment.invalid", {"value": raw}).message()]})


def int_arg(name: str, default: int, *, minimum: int, maximum: float = math.inf) -> int:
    """A whole-number query argument; 400 when malformed or below `minimum`.

    Values above `maximum` are lowered to it (as DRF does with max_limit).
    """
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        invalid({name: [f"Must be a whole number, not {raw!r}."]})
    if value < minimum:
        invalid({name: [f"Must be at least {minimum}."]})
    return int(min(value, maximum))
