"""Error pages: 400 (CSRF), 403, 404, 405, 429, 500 as friendly HTML.

Requests to the JSON parts (`/api/`, `/healthz`) get `{"error": ...}` instead,
as docs/webhook.md and docs/api.md promise.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.extensions import db

log = logging.getLogger(__name__)
JSON_PREFIXES = ("/api/", "/healthz")


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    # Unhandled exceptions reach this as a 500 (except in tests, where they propagate).
    app.register_error_handler(InternalServerError, _server_error)


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _titles() -> dict[int, tuple[str, str]]:
    return {
        400: (_("Bad request"), _("The request could not be understood.")),
        403: (
            _("You cannot do this"),
            _(
                "Your account does not have the rights for this page or action. "
                "Ask an administrator if you need them."
            ),
        ),
        404: (
            _("Page not found"),
            _("This page does not exist, or what it showed has been deleted."),
        ),
        405: (_("Not allowed"), _("This address does not accept this kind of request.")),
        429: (_("Too many requests"), _("Please wait a moment and try again.")),
        500: (
            _("Something went wrong"),
            _(
                "An unexpected error happened on our side. It has been logged; "
                "please try again in a moment."
            ),
        ),
    }


def render_error(code: int, title: str | None = None, message: str | None = None):
    default_title, default_message = _titles().get(code, (_("Error"), ""))
    return (
        render_template(
            "errors/error.html",
            code=code,
            title=title or default_title,
            message=message or default_message,
        ),
        code,
    )


def _csrf_error(exc: CSRFError):
    if _wants_json():
        return jsonify(error=exc.description), 400
    return render_error(
        400,
        _("This form has expired"),
        _("For your security, forms expire. Go back, reload the page and try again."),
    )


def _http_error(exc: HTTPException):
    if exc.code is None or exc.code < 400:
        return exc
    if _wants_json():
        response = jsonify(error=exc.description)
        response.status_code = exc.code
        return response
    if exc.code not in _titles():
        return exc
    response = render_error(exc.code)
    return response


def _server_error(exc: InternalServerError):
    db.session.rollback()
    if _wants_json():
        return jsonify(error="Internal server error."), 500
    try:
        return render_error(500)
    except Exception:  # the error page itself failed: plain text, never a loop
        log.exception("The 500 page could not be rendered")
        return InternalServerError.description, 500
