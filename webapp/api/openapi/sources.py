"""A form's source (ODK Central) in the OpenAPI document (webapp/api/sources.py)."""

from __future__ import annotations

from webapp.api.openapi.parts import (
    FORM,
    NO_CONTENT,
    Schema,
    body,
    json_answer,
    op,
    path_params,
    ref,
    string,
)


def paths() -> dict[str, Schema]:
    source = json_answer(ref("Source"), "The source.")
    return {
        FORM + "/source": {
            "parameters": path_params("form_uid"),
            "get": op("The form's source (ODK Central), see docs/central.md", {"200": source}),
            "put": op(
                "Connect the form to a Central form (201), or change its source",
                {"200": source, "201": source},
                write=True,
                requestBody=body("Source"),
            ),
            "delete": op("Disconnect (stored submissions stay)", NO_CONTENT, write=True),
        }
    }


def schemas() -> dict[str, Schema]:
    when = string(format="date-time", nullable=True, readOnly=True)
    status = string(nullable=True, readOnly=True)
    source = {
        "type": "object",
        "properties": {
            "uid": string(readOnly=True),
            "kind": string(enum=["odk_central"]),
            "url": string(format="uri"),
            "project_id": {"type": "integer", "minimum": 1},
            "xml_form_id": string(),
            "email": string(),
            "password": string(writeOnly=True),
            "since": string(format="date-time", nullable=True),
            "active": {"type": "boolean"},
            "send_backfill": {"type": "boolean"},
            "status": string(enum=["ok", "error"], readOnly=True),
            "error_code": status,
            "last_error": status,
            "connected_at": when,
            "last_polled_at": when,
            "next_poll_at": when,
            "received_count": {"type": "integer", "readOnly": True},
        },
    }
    return {"Source": source}
