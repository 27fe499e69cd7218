"""The error answers of the OpenAPI document: what parts.ERRORS refers to."""

from __future__ import annotations

from webapp.api.openapi.parts import Schema, json_answer, ref, string


def schemas() -> dict[str, Schema]:
    return {
        "Error": {"type": "object", "properties": {"error": string()}},
        "ValidationErrors": {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": string()},
                }
            },
        },
    }


def responses() -> dict[str, Schema]:
    error = ref("Error")
    return {
        "Invalid": json_answer(ref("ValidationErrors"), "Invalid input, by field."),
        "Unauthorized": json_answer(error, "Missing or wrong token (WWW-Authenticate: Token)."),
        "Forbidden": json_answer(error, "The token's user is a viewer (read-only)."),
        "NotFound": json_answer(error, "No such form, hook or log."),
    }
