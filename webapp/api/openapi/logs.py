"""A hook's delivery logs in the OpenAPI document: list (with filters), one log, retry."""

from __future__ import annotations

from webapp.api.openapi.parts import (
    DATE,
    HOOK,
    LOG,
    NULLABLE_DATE,
    PAGE_PARAMS,
    URI,
    Schema,
    json_answer,
    op,
    page,
    path_params,
    query,
    ref,
    string,
)

FILTERS = [
    query(
        "status",
        "failed, pending or success (KoboToolbox's 0, 1, 2 are accepted too).",
        type="string",
        enum=["failed", "pending", "success", "0", "1", "2"],
    ),
    query(
        "start_date",
        "Logs created at or after this ISO 8601 date or date-time (UTC if no offset).",
        type="string",
    ),
    query(
        "end_date",
        "Logs created before this date-time; a date alone includes that whole day.",
        type="string",
    ),
]


def paths() -> dict[str, Schema]:
    return {
        HOOK + "/logs": {
            "parameters": path_params("form_uid", "hook_uid"),
            "get": op(
                "List the hook's delivery logs, newest first",
                {"200": json_answer(page("Log"), "A page of logs (without attempts).")},
                parameters=[*PAGE_PARAMS, *FILTERS],
            ),
        },
        LOG: {
            "parameters": path_params("form_uid", "hook_uid", "log_uid"),
            "get": op(
                "Get a log with its attempts", {"200": json_answer(ref("LogDetail"), "The log.")}
            ),
        },
        LOG + "/retry": {
            "parameters": path_params("form_uid", "hook_uid", "log_uid"),
            "post": op(
                "Retry one failed log (400 if it is not failed)",
                {"200": json_answer(ref("LogDetail"), "The log, pending again.")},
                write=True,
            ),
        },
    }


def schemas() -> dict[str, Schema]:
    return {
        "Log": {"type": "object", "properties": _log_properties()},
        "LogDetail": {
            "type": "object",
            "properties": {
                **_log_properties(),
                "attempts": {"type": "array", "items": ref("Attempt")},
            },
        },
        "Attempt": {
            "type": "object",
            "properties": {
                "number": {"type": "integer"},
                "started_at": DATE,
                "duration_ms": {"type": "integer", "nullable": True},
                "status_code": {"type": "integer", "nullable": True},
                "outcome": string(nullable=True, enum=["success", "failure", "error", None]),
                "message": string(),
            },
        },
    }


def _log_properties() -> dict[str, Schema]:
    return {
        "uid": string(),
        "url": URI,
        "submission_id": string(description="The submission's instance id."),
        "tries": {"type": "integer"},
        "status": string(enum=["pending", "success", "failed"]),
        "status_code": {"type": "integer", "nullable": True},
        "message": string(),
        "date_created": DATE,
        "date_modified": DATE,
        "next_retry_at": NULLABLE_DATE,
    }
