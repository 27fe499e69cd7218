"""Forms in the OpenAPI document: /api/v1/forms and a form."""

from __future__ import annotations

from webapp.api.openapi.parts import (
    DATE,
    FORM,
    NO_CONTENT,
    PAGE_PARAMS,
    URI,
    Schema,
    body,
    json_answer,
    op,
    page,
    path_param,
    ref,
    string,
)


def paths() -> dict[str, Schema]:
    form = json_answer(ref("Form"), "The form.")
    return {
        "/api/v1/forms": {
            "get": op(
                "List forms",
                {"200": json_answer(page("Form"), "A page of forms.")},
                parameters=PAGE_PARAMS,
            ),
            "post": op(
                "Create a form (owned by the token's user)",
                {"201": json_answer(ref("Form"), "The new form.")},
                write=True,
                requestBody=body("FormInput"),
            ),
        },
        FORM: {
            "parameters": [path_param("form_uid")],
            "get": op("Get a form", {"200": form}),
            "patch": op("Rename a form", {"200": form}, write=True, requestBody=body("FormInput")),
            "delete": op("Delete a form, its hooks, submissions and logs", NO_CONTENT, write=True),
        },
    }


def schemas() -> dict[str, Schema]:
    return {
        "Form": {
            "type": "object",
            "properties": {
                "uid": string(readOnly=True),
                "name": string(maxLength=255),
                "url": URI,
                "ingest_url": URI,
                "ingest_token": string(
                    nullable=True, description="null for viewers (it allows posting)."
                ),
                "owner": string(format="email"),
                "hook_count": {"type": "integer"},
                "submission_count": {"type": "integer"},
                "date_created": DATE,
                "date_modified": DATE,
            },
        },
        "FormInput": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": string(maxLength=255)},
        },
    }
