"""The OpenAPI 3 description of /api/v1, served at `GET /api/v1/openapi.json`.

Hand-written, one module per area (its paths and schemas), all built from
parts.py: forms.py, submissions.py (with ingest.py, the webhook URL),
hooks.py, logs.py, bulk.py (backfill and replay), sources.py, errors.py.
tests/api/test_api_openapi.py checks that every rule of the URL map under
/api/v1 (the ingest webhook included) is described with its methods, so a
new route cannot be forgotten.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from webapp.api.common import base_url, bp
from webapp.api.openapi import bulk, errors, forms, hooks, ingest, logs, sources, submissions
from webapp.api.openapi.parts import Schema

AREAS = (forms, submissions, hooks, logs, bulk, sources)
SELF = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This description (no token needed)",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document."}},
        }
    }
}
API_TOKEN = {
    "type": "apiKey",
    "in": "header",
    "name": "Authorization",
    "description": "'Token <key>': a personal API token.",
}


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3 document, with this server's URL."""
    paths: dict[str, Schema] = {}
    schemas: dict[str, Schema] = {}
    for area in AREAS:
        paths.update(area.paths())
        schemas.update(area.schemas())
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Formhooks management API",
            "version": current_app.config["VERSION"],
            "description": "Forms, hooks (REST services) and delivery logs, "
            "with KoboToolbox's field names. See docs/api.md.",
        },
        "servers": [{"url": base_url()}],
        "security": [{"apiToken": []}],
        "paths": {**paths, **SELF},
        "components": {
            "securitySchemes": {"apiToken": API_TOKEN, **ingest.SECURITY_SCHEMES},
            "schemas": {**schemas, **errors.schemas()},
            "responses": errors.responses(),
        },
    }


@bp.get("/openapi.json")
def openapi():
    return openapi_document()
