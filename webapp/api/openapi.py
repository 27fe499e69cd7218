"""The OpenAPI 3 description of /api/v1, served at `GET /api/v1/openapi.json`.

Hand-written; tests/api/test_api_openapi.py checks that every rule of the
URL map under /api/v1 (the ingest webhook included) is described here with
its methods, so a new route cannot be forgotten.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from webapp.api.common import base_url, bp

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _page(item: str) -> Schema:
    return {
        "type": "object",
        "required": ["count", "next", "previous", "results"],
        "properties": {
            "count": {"type": "integer"},
            "next": {"type": "string", "format": "uri", "nullable": True},
            "previous": {"type": "string", "format": "uri", "nullable": True},
            "results": {"type": "array", "items": _ref(item)},
        },
    }


def _path_param(name: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, **schema: Any) -> Schema:
    return {"name": name, "in": "query", "description": description, "schema": schema}


PAGE_PARAMS = [
    _query("limit", "Page size (default 100, at most 1000).", type="integer", minimum=1),
    _query("start", "Offset of the first result.", type="integer", minimum=0),
]
ERRORS = {
    "400": {"$ref": "#/components/responses/Invalid"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
READ_ERRORS = {k: v for k, v in ERRORS.items() if k in ("401", "404")}


def _op(summary: str, responses: dict[str, Schema], *, write: bool = False, **extra: Any):
    errors = ERRORS if write else READ_ERRORS
    return {"summary": summary, "responses": {**responses, **errors}, **extra}


def _body(name: str) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


NO_CONTENT = {"204": {"description": "Deleted."}}
FORM = "/api/v1/forms/{form_uid}"
HOOK = FORM + "/hooks/{hook_uid}"
LOG = HOOK + "/logs/{log_uid}"


def _paths() -> dict[str, Schema]:
    return {
        "/api/v1/forms": {
            "get": _op(
                "List forms",
                {"200": _json(_page("Form"), "A page of forms.")},
                parameters=PAGE_PARAMS,
            ),
            "post": _op(
                "Create a form (owned by the token's user)",
                {"201": _json(_ref("Form"), "The new form.")},
                write=True,
                requestBody=_body("FormInput"),
            ),
        },
        FORM: {
            "parameters": [_path_param("form_uid")],
            "get": _op("Get a form", {"200": _json(_ref("Form"), "The form.")}),
            "patch": _op(
                "Rename a form",
                {"200": _json(_ref("Form"), "The form.")},
                write=True,
                requestBody=_body("FormInput"),
            ),
            "delete": _op("Delete a form, its hooks, submissions and logs", NO_CONTENT, write=True),
        },
        FORM + "/submissions": {
            "parameters": [_path_param("form_uid")],
            "get": _op(
                "List stored submissions, newest first (data only up to 64 KB)",
                {"200": _json(_page("Submission"), "A page of submissions.")},
                parameters=[
                    _query(
                        "limit", "Page size (default and at most 100).", type="integer", minimum=1
                    ),
                    PAGE_PARAMS[1],
                ],
            ),
            "post": _ingest_operation(),
        },
        FORM + "/submissions/{submission_id}": {
            "parameters": [_path_param("form_uid"), _path_param("submission_id")],
            "get": _op(
                "Get a submission, with its data in full and each of its versions (edits), "
                "oldest first",
                {"200": _json(_ref("SubmissionDetail"), "The submission.")},
            ),
        },
        FORM + "/hooks": {
            "parameters": [_path_param("form_uid")],
            "get": _op(
                "List the form's hooks (REST services)",
                {"200": _json(_page("Hook"), "A page of hooks.")},
                parameters=PAGE_PARAMS,
            ),
            "post": _op(
                "Create a hook",
                {"201": _json(_ref("Hook"), "The new hook.")},
                write=True,
                requestBody=_body("HookInput"),
            ),
        },
        HOOK: {
            "parameters": [_path_param("form_uid"), _path_param("hook_uid")],
            "get": _op("Get a hook", {"200": _json(_ref("Hook"), "The hook.")}),
            "patch": _op(
                "Change some fields of a hook (enabling it sends what it parked)",
                {"200": _json(_ref("Hook"), "The hook.")},
                write=True,
                requestBody=_body("HookInput"),
            ),
            "delete": _op("Delete a hook and its logs", NO_CONTENT, write=True),
        },
        HOOK + "/retry": {
            "parameters": [_path_param("form_uid"), _path_param("hook_uid")],
            "post": _op(
                "Retry every failed log of the hook",
                {"200": _json(_ref("RetryAll"), "How many logs were queued.")},
                write=True,
            ),
        },
        HOOK + "/rotate-secret": {
            "parameters": [_path_param("form_uid"), _path_param("hook_uid")],
            "post": _op(
                "Replace the hook's signing secret; for 24 hours every send is signed with "
                "the new and the old one (docs/signatures.md)",
                {"200": _json(_ref("Hook"), "The hook, with its new signing_secret.")},
                write=True,
            ),
        },
        HOOK + "/logs": {
            "parameters": [_path_param("form_uid"), _path_param("hook_uid")],
            "get": _op(
                "List the hook's delivery logs, newest first",
                {"200": _json(_page("Log"), "A page of logs (without attempts).")},
                parameters=[*PAGE_PARAMS, *_log_filters()],
            ),
        },
        LOG: {
            "parameters": [_path_param(n) for n in ("form_uid", "hook_uid", "log_uid")],
            "get": _op(
                "Get a log with its attempts", {"200": _json(_ref("LogDetail"), "The log.")}
            ),
        },
        LOG + "/retry": {
            "parameters": [_path_param(n) for n in ("form_uid", "hook_uid", "log_uid")],
            "post": _op(
                "Retry one failed log (400 if it is not failed)",
                {"200": _json(_ref("LogDetail"), "The log, pending again.")},
                write=True,
            ),
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This description (no token needed)",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3 document."}},
            }
        },
    }


def _log_filters() -> list[Schema]:
    return [
        _query(
            "status",
            "failed, pending or success (KoboToolbox's 0, 1, 2 are accepted too).",
            type="string",
            enum=["failed", "pending", "success", "0", "1", "2"],
        ),
        _query(
            "start_date",
            "Logs created at or after this ISO 8601 date or date-time (UTC if no offset).",
            type="string",
        ),
        _query(
            "end_date",
            "Logs created before this date-time; a date alone includes that whole day.",
            type="string",
        ),
    ]


def _ingest_operation() -> Schema:
    """The webhook URL (webapp/ingest), described here so the API has one description."""
    result = {
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
            "201": _json(result, "Created; one delivery per active hook."),
            "200": _json(
                result,
                "An edit (deliveries: hooks with send_edits on), or a known instance id"
                " posted again (nothing sent).",
            ),
            "400": _json(_ref("Error"), "Malformed body."),
            "401": _json(_ref("Error"), "Missing or wrong ingest token."),
            "404": _json(_ref("Error"), "No such form."),
            "413": _json(_ref("Error"), "Body too large."),
            "415": _json(_ref("Error"), "Unsupported content type."),
        },
    }


def _string(**extra: Any) -> Schema:
    return {"type": "string", **extra}


DATE = _string(format="date-time")
NULLABLE_DATE = _string(format="date-time", nullable=True)
URI = _string(format="uri", readOnly=True)


def _schemas() -> dict[str, Schema]:
    headers = {"type": "object", "additionalProperties": {"type": "string"}}
    return {
        "Form": {
            "type": "object",
            "properties": {
                "uid": _string(readOnly=True),
                "name": _string(maxLength=255),
                "url": URI,
                "ingest_url": URI,
                "ingest_token": _string(
                    nullable=True, description="null for viewers (it allows posting)."
                ),
                "owner": _string(format="email"),
                "hook_count": {"type": "integer"},
                "submission_count": {"type": "integer"},
                "date_created": DATE,
                "date_modified": DATE,
            },
        },
        "FormInput": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": _string(maxLength=255)},
        },
        "Submission": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "url": _string(format="uri"),
                "instance_id": _string(description="Its current (latest) version's instance id."),
                "source_format": _string(enum=["json", "xml"]),
                "content_type": _string(),
                "root_instance_id": _string(description="Its first version's instance id."),
                "versions": {"type": "integer", "description": "Versions received (edits + 1)."},
                "size": {
                    "type": "integer",
                    "description": "Bytes of its latest version's body as last received.",
                },
                "data": {
                    "type": "object",
                    "nullable": True,
                    "description": "Of its latest version, as last received; null in lists "
                    "when that body is over 64 KB (see data_omitted).",
                },
                "data_omitted": {
                    "type": "boolean",
                    "description": "True when a list left the data out: get `url` for it.",
                },
                "attachments": {
                    "type": "array",
                    "items": _ref("Attachment"),
                    "description": "Files of its latest version (docs/attachments.md).",
                },
                "edit_count": {"type": "integer"},
                "date_created": DATE,
                "date_modified": DATE,
            },
        },
        "SubmissionDetail": {
            "type": "object",
            "description": "A Submission's fields, with `versions` listing its versions.",
            "properties": {
                "versions": {"type": "array", "items": _ref("SubmissionVersion")},
            },
        },
        "SubmissionVersion": {
            "type": "object",
            "properties": {
                "number": {"type": "integer"},
                "instance_id": _string(),
                "deprecated_id": _string(nullable=True),
                "source_format": _string(enum=["json", "xml"]),
                "content_type": _string(),
                "date_created": DATE,
                "date_modified": DATE,
                "edit_count": {"type": "integer"},
                "data": {"type": "object"},
                "attachments": {"type": "array", "items": _ref("Attachment")},
            },
        },
        "Attachment": {
            "type": "object",
            "description": "A file posted with a version, as `_attachments` lists it.",
            "properties": {
                "uid": _string(),
                "filename": _string(description="As the instance names it."),
                "media_file_basename": _string(description="The same name (KoboToolbox)."),
                "mimetype": _string(),
                "size": {"type": "integer", "description": "Bytes."},
                "download_url": _string(
                    format="uri",
                    description="Signed; needs no credential; expires after ATTACHMENT_URL_TTL.",
                ),
            },
        },
        "HookSettings": {
            "type": "object",
            "properties": {
                "username": _string(),
                "custom_headers": {**headers, "description": "Values are masked."},
            },
        },
        "HookSettingsInput": {
            "type": "object",
            "properties": {
                "username": _string(),
                "password": _string(
                    writeOnly=True, description="Never returned; empty or absent keeps it."
                ),
                "custom_headers": {
                    **headers,
                    "description": "Replaces all headers; a masked value sent back keeps it.",
                },
            },
        },
        "Hook": {"type": "object", "properties": _hook_properties(output=True)},
        "HookInput": {
            "type": "object",
            "required": ["name", "endpoint"],
            "description": "On PATCH every field is optional.",
            "properties": _hook_properties(output=False),
        },
        "Log": {"type": "object", "properties": _log_properties()},
        "LogDetail": {
            "type": "object",
            "properties": {
                **_log_properties(),
                "attempts": {"type": "array", "items": _ref("Attempt")},
            },
        },
        "Attempt": {
            "type": "object",
            "properties": {
                "number": {"type": "integer"},
                "started_at": DATE,
                "duration_ms": {"type": "integer", "nullable": True},
                "status_code": {"type": "integer", "nullable": True},
                "outcome": _string(nullable=True, enum=["success", "failure", "error", None]),
                "message": _string(),
            },
        },
        "RetryAll": {
            "type": "object",
            "properties": {"detail": _string(), "count": {"type": "integer"}},
        },
        "Error": {"type": "object", "properties": {"error": _string()}},
        "ValidationErrors": {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": _string()},
                }
            },
        },
    }


def _hook_properties(*, output: bool) -> dict[str, Schema]:
    properties: dict[str, Schema] = {
        "name": _string(maxLength=255),
        "endpoint": _string(format="uri"),
        "active": {"type": "boolean"},
        "export_type": _string(enum=["json", "xml"]),
        "auth_level": _string(enum=["no_auth", "basic_auth"]),
        "settings": _ref("HookSettings" if output else "HookSettingsInput"),
        "subset_fields": {"type": "array", "items": _string()},
        "payload_template": _string(nullable=True, description="JSON only; %SUBMISSION%."),
        "send_edits": {
            "type": "boolean",
            "description": "Send edits (new versions) too; default false.",
        },
        "email_notification": {"type": "boolean"},
        "notification_emails": {"type": "array", "items": _string(format="email")},
    }
    if output:
        count = {"type": "integer", "readOnly": True}
        properties = {
            "uid": _string(readOnly=True),
            "url": URI,
            "logs_url": URI,
            **properties,
            "success_count": count,
            "failed_count": count,
            "pending_count": count,
            "date_created": DATE,
            "date_modified": DATE,
            "signing_secret": _string(
                readOnly=True,
                description="whsec_...: the key of the webhook-signature header "
                "(Standard Webhooks, docs/signatures.md). Editors and admins only: "
                "absent for viewers. Changed by rotate-secret only.",
            ),
        }
    return properties


def _log_properties() -> dict[str, Schema]:
    return {
        "uid": _string(),
        "url": URI,
        "submission_id": _string(description="The submission's instance id."),
        "tries": {"type": "integer"},
        "status": _string(enum=["pending", "success", "failed"]),
        "status_code": {"type": "integer", "nullable": True},
        "message": _string(),
        "date_created": DATE,
        "date_modified": DATE,
        "next_retry_at": NULLABLE_DATE,
    }


def _responses() -> dict[str, Schema]:
    return {
        "Invalid": _json(_ref("ValidationErrors"), "Invalid input, by field."),
        "Unauthorized": _json(_ref("Error"), "Missing or wrong token (WWW-Authenticate: Token)."),
        "Forbidden": _json(_ref("Error"), "The token's user is a viewer (read-only)."),
        "NotFound": _json(_ref("Error"), "No such form, hook or log."),
    }


def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI 3 document, with this server's URL."""
    from webapp.api.bulk import openapi_parts as bulk_parts
    from webapp.api.sources import openapi_parts

    source_paths, source_schemas = openapi_parts()
    bulk_paths, bulk_schemas = bulk_parts()
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
        "paths": {**_paths(), **bulk_paths, **source_paths},
        "components": {
            "securitySchemes": {
                "apiToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Token <key>': a personal API token.",
                },
                "ingestBearer": {"type": "http", "scheme": "bearer"},
                "ingestBasic": {"type": "http", "scheme": "basic"},
                "ingestQuery": {"type": "apiKey", "in": "query", "name": "token"},
            },
            "schemas": {**_schemas(), **bulk_schemas, **source_schemas},
            "responses": _responses(),
        },
    }


@bp.get("/openapi.json")
def openapi():
    return openapi_document()
