"""Security headers and session lifetime for the whole app (docs/security.md).

The Content-Security-Policy allows no inline script, no inline event
handler and no inline style: every script is a file under static/, and SVG
charts use presentation attributes. Pages cannot be framed, content types
are not sniffed, and HTML pages are not cached (they show tokens).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
#: A session ends after this long without a request (the cookie is refreshed on each).
SESSION_IDLE_TIMEOUT = timedelta(hours=8)
#: ... and this long after logging in, however active.
SESSION_MAX_AGE = timedelta(hours=24)

_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def init_security(app: Flask) -> None:
    """Set the session lifetime and add the headers to every response."""
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_IDLE_TIMEOUT
    app.config["SESSION_REFRESH_EACH_REQUEST"] = True
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    """Add the headers a view did not set itself."""
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if response.mimetype == "text/html" and request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
