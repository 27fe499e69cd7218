"""The webhook URL (webapp/ingest) in the OpenAPI document, so the API has one description.

It shares its path with the API's list of submissions (submissions.py) but
takes the form's ingest token, not an API token.
"""

from __future__ import annotations

from webapp.api.openapi.parts import Schema, json_answer, ref

RESULT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "instance_id": {"type": "string"},
        "created": {"type": "boolean"},
        "deliveries": {"type": "integer"},
        "edit_of": {
            "type": "string",
            "description": "The root instance id, when stored as a version of it.",
        },
    },
}


def ingest_operation() -> Schema:
    """POST .../submissions: receive a submission."""
    error = ref("Error")
    return {
        "summary": "The webhook URL: receive a submission (JSON, XML, urlencoded, OpenRosa)",
        "description": "Authenticated with the form's ingest token, not an API token.",
        "security": [{"ingestBearer": []}, {"ingestBasic": []}, {"ingestQuery": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/xml": {"schema": {"type": "string"}},
                "text/xml": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                "multipart/form-data": {"schema": {"type": "object"}},
            },
        },
        "responses": {
            "201": json_answer(RESULT, "Created; one delivery per active hook."),
            "200": json_answer(
                RESULT,
                "An edit (deliveries: hooks with send_edits on), or a known instance id"
                " posted again (nothing sent).",
            ),
            "400": json_answer(error, "Malformed body."),
            "401": json_answer(error, "Missing or wrong ingest token."),
            "404": json_answer(error, "No such form."),
            "413": json_answer(error, "Body too large."),
            "415": json_answer(error, "Unsupported content type."),
        },
    }


SECURITY_SCHEMES = {
    "ingestBearer": {"type": "http", "scheme": "bearer"},
    "ingestBasic": {"type": "http", "scheme": "basic"},
    "ingestQuery": {"type": "apiKey", "in": "query", "name": "token"},
}
