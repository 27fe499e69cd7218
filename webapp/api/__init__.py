"""The JSON management API under /api/v1; see docs/api.md.

One blueprint, `api`: common.py (token auth, errors, URLs), forms.py,
hooks.py, signing.py (a hook's signing secret), logs.py, bulk.py (backfill
and replay), sources.py; openapi/ (the OpenAPI document, one module per
area). The webhook URL (POST .../submissions) is webapp/ingest's, on the
same path as the API's GET of submissions.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the API blueprint, exempt from CSRF (it takes no cookies, only tokens)."""
    from webapp.api import bulk, forms, hooks, logs, openapi, signing, sources  # noqa: F401
    from webapp.api.common import bp
    from webapp.extensions import csrf

    csrf.exempt(bp)
    app.register_blueprint(bp)
