"""A hook's backfills and replays in the OpenAPI document (webapp/api/bulk.py)."""

from __future__ import annotations

from webapp.api.openapi.parts import (
    HOOK,
    NULLABLE_DATE,
    PAGE_PARAMS,
    Schema,
    body,
    json_answer,
    op,
    page,
    path_params,
    ref,
    string,
)

COUNT = {"type": "integer"}
STATUSES = string(enum=["failed", "success"])


def paths() -> dict[str, Schema]:
    started = json_answer(ref("BulkStarted"), "Accepted: sent in the background (Location: url).")
    return {
        HOOK + "/backfill": {
            "parameters": path_params("form_uid", "hook_uid"),
            "post": op(
                "Send the hook the form's submissions of a date range it has no "
                "delivery for (docs/backfill.md)",
                {"202": started},
                write=True,
                requestBody=body("BackfillInput", required=False),
            ),
        },
        HOOK + "/replay": {
            "parameters": path_params("form_uid", "hook_uid"),
            "post": op(
                "Send again the hook's finished deliveries of a status and date "
                "range, each with its uid, in a fresh series",
                {"202": started},
                write=True,
                requestBody=body("ReplayInput", required=False),
            ),
        },
        HOOK + "/bulk": {
            "parameters": path_params("form_uid", "hook_uid"),
            "get": op(
                "The hook's backfills and replays, newest first",
                {"200": json_answer(page("Bulk"), "A page of backfills and replays.")},
                parameters=PAGE_PARAMS,
            ),
        },
        HOOK + "/bulk/{bulk_uid}": {
            "parameters": path_params("form_uid", "hook_uid", "bulk_uid"),
            "get": op(
                "A backfill's or replay's progress",
                {"200": json_answer(ref("Bulk"), "Its progress.")},
            ),
        },
        HOOK + "/bulk/{bulk_uid}/cancel": {
            "parameters": path_params("form_uid", "hook_uid", "bulk_uid"),
            "post": op(
                "Cancel it: no more deliveries made, those not sent yet dropped "
                "(400 unless running)",
                {"200": json_answer(ref("Bulk"), "Its progress, cancelled.")},
                write=True,
            ),
        },
    }


def schemas() -> dict[str, Schema]:
    dates = {
        "since": string(
            nullable=True,
            description="ISO 8601 date or date-time (UTC if no offset), inclusive; "
            "absent: from the first.",
        ),
        "until": string(
            nullable=True,
            description="A date includes that day; a date-time is the exclusive end; absent: now.",
        ),
    }
    when = NULLABLE_DATE
    return {
        "BackfillInput": {"type": "object", "properties": dates},
        "ReplayInput": {
            "type": "object",
            "properties": {
                "status": {
                    "oneOf": [STATUSES, {"type": "array", "items": STATUSES}],
                    "description": "Absent: both.",
                },
                **dates,
            },
        },
        "BulkStarted": {
            "type": "object",
            "properties": {
                "logs": {**COUNT, "description": "Deliveries it will make (at most)."},
                "uid": string(),
                "url": string(format="uri"),
            },
        },
        "Bulk": {
            "type": "object",
            "properties": {
                "uid": string(),
                "url": string(format="uri"),
                "kind": string(enum=["backfill", "replay"]),
                "state": string(enum=["running", "done", "cancelled"]),
                "since": when,
                "until": {**when, "nullable": False},
                "statuses": {"type": "array", "items": STATUSES, "description": "Replays only."},
                "total": {**COUNT, "description": "Counted when requested."},
                "created": {**COUNT, "description": "Deliveries made (or restarted) so far."},
                "sent": {**COUNT, "description": "Of those, attempted at least once."},
                "succeeded": COUNT,
                "failed": COUNT,
                "pending": {**COUNT, "description": "Waiting for a first attempt or a retry."},
                "percent": {**COUNT, "description": "Finished deliveries of the total."},
                "requested_by": string(),
                "date_created": {**when, "nullable": False},
                "filled_at": {**when, "description": "When its last deliveries were made."},
                "cancelled_at": when,
                "finished_at": {**when, "description": "When nothing of it was left to send."},
            },
        },
    }
