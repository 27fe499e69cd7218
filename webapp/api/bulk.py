"""Backfill and replay of a hook, their progress and cancel (docs/api.md, docs/backfill.md).

    POST .../hooks/<hook_uid>/backfill       {"since", "until"}            -> 202
    POST .../hooks/<hook_uid>/replay         {"status", "since", "until"}  -> 202
    GET  .../hooks/<hook_uid>/bulk                                          (paginated)
    GET  .../hooks/<hook_uid>/bulk/<bulk_uid>                               progress
    POST .../hooks/<hook_uid>/bulk/<bulk_uid>/cancel

A 202 answers `{"logs": N, "uid", "url"}` with `Location: url`: N is how
many deliveries it will make; they are made and sent in the background.
Bad input answers 400 `{"errors": {field: [messages]}}` and starts nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from webapp.api.common import (
    absolute_url,
    api_user,
    bp,
    fail,
    get_hook,
    invalid,
    isoformat,
    json_body,
)
from webapp.api.pagination import paginate
from webapp.bulk.cancel import cancel
from webapp.bulk.progress import progress
from webapp.bulk.ranges import parse_backfill, parse_replay
from webapp.bulk.start import start_backfill, start_replay
from webapp.extensions import db
from webapp.models import BulkSend, Hook
from webapp.models.base import utcnow
from webapp.validation import Problem, english_errors

HOOK = "/forms/<form_uid>/hooks/<hook_uid>"


def bulk_json(bulk: BulkSend, form_uid: str, hook_uid: str) -> dict[str, Any]:
    shown = progress(bulk)
    for name in ("since", "until", "date_created", "filled_at", "cancelled_at", "finished_at"):
        shown[name] = isoformat(shown[name])
    if bulk.kind != "replay":
        del shown["statuses"]
    return {
        **shown,
        "url": absolute_url(
            "api.bulk_detail", form_uid=form_uid, hook_uid=hook_uid, bulk_uid=bulk.uid
        ),
    }


def _start(form_uid: str, hook_uid: str, parse, start):
    hook = get_hook(form_uid, hook_uid)
    wanted, problems = parse(json_body(), utcnow())
    if not hook.active:
        problems = [*problems, Problem("non_field_errors", "hook.disabled")]
    if problems:
        invalid(english_errors(problems))
    bulk = start(hook, wanted, api_user().email)
    url = absolute_url("api.bulk_detail", form_uid=form_uid, hook_uid=hook_uid, bulk_uid=bulk.uid)
    return {"logs": bulk.total, "uid": bulk.uid, "url": url}, 202, {"Location": url}


@bp.post(HOOK + "/backfill")
def hook_backfill(form_uid: str, hook_uid: str):
    """Send the hook the form's submissions of a date range it has no delivery for."""
    return _start(form_uid, hook_uid, parse_backfill, start_backfill)


@bp.post(HOOK + "/replay")
def hook_replay(form_uid: str, hook_uid: str):
    """Send again the hook's finished deliveries of a status and date range."""
    return _start(form_uid, hook_uid, parse_replay, start_replay)


@bp.get(HOOK + "/bulk")
def bulk_list(form_uid: str, hook_uid: str):
    """The hook's backfills and replays, newest first."""
    hook = get_hook(form_uid, hook_uid)
    query = (
        select(BulkSend)
        .where(BulkSend.hook_id == hook.id)
        .order_by(BulkSend.date_created.desc(), BulkSend.id.desc())
    )
    return paginate(
        query,
        lambda rows: [bulk_json(row[0], form_uid, hook_uid) for row in rows],
        count_query=select(func.count()).select_from(BulkSend).where(BulkSend.hook_id == hook.id),
    )


def _get_bulk(hook: Hook, bulk_uid: str) -> BulkSend:
    bulk = db.session.scalar(
        select(BulkSend).where(BulkSend.hook_id == hook.id, BulkSend.uid == bulk_uid)
    )
    if bulk is None:
        fail(404, f"No backfill or replay with uid {bulk_uid!r} for hook {hook.uid!r}.")
    return bulk


@bp.get(HOOK + "/bulk/<bulk_uid>")
def bulk_detail(form_uid: str, hook_uid: str, bulk_uid: str):
    return bulk_json(_get_bulk(get_hook(form_uid, hook_uid), bulk_uid), form_uid, hook_uid)


@bp.post(HOOK + "/bulk/<bulk_uid>/cancel")
def bulk_cancel(form_uid: str, hook_uid: str, bulk_uid: str):
    """Stop it: no more deliveries made, those not sent yet dropped (400 unless running)."""
    bulk = _get_bulk(get_hook(form_uid, hook_uid), bulk_uid)
    if not cancel(bulk):
        db.session.refresh(bulk)
        shown = progress(bulk)
        invalid(english_errors([Problem("state", "bulk.not_running", {"state": shown["state"]})]))
    db.session.refresh(bulk)
    return bulk_json(bulk, form_uid, hook_uid)


def openapi_parts() -> tuple[dict[str, Any], dict[str, Any]]:
    """This module's (paths, schemas) for the OpenAPI document (webapp.api.openapi)."""
    text = {"type": "string"}
    when = {"type": "string", "format": "date-time", "nullable": True}
    count = {"type": "integer"}

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    def answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    def errors(*codes: str) -> dict[str, Any]:
        names = {"400": "Invalid", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound"}
        return {code: {"$ref": f"#/components/responses/{names[code]}"} for code in codes}

    def params(*names: str) -> list[dict[str, Any]]:
        return [{"name": n, "in": "path", "required": True, "schema": text} for n in names]

    def body(name: str) -> dict[str, Any]:
        return {"required": False, "content": {"application/json": {"schema": ref(name)}}}

    started = answer(ref("BulkStarted"), "Accepted: sent in the background (Location: url).")
    write = errors("400", "401", "403", "404")
    hook = "/api/v1/forms/{form_uid}/hooks/{hook_uid}"
    paths = {
        hook + "/backfill": {
            "parameters": params("form_uid", "hook_uid"),
            "post": {
                "summary": "Send the hook the form's submissions of a date range it has no "
                "delivery for (docs/backfill.md)",
                "requestBody": body("BackfillInput"),
                "responses": {"202": started, **write},
            },
        },
        hook + "/replay": {
            "parameters": params("form_uid", "hook_uid"),
            "post": {
                "summary": "Send again the hook's finished deliveries of a status and date "
                "range, each with its uid, in a fresh series",
                "requestBody": body("ReplayInput"),
                "responses": {"202": started, **write},
            },
        },
        hook + "/bulk": {
            "parameters": params("form_uid", "hook_uid"),
            "get": {
                "summary": "The hook's backfills and replays, newest first",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "integer", "minimum": m}}
                    for n, m in (("limit", 1), ("start", 0))
                ],
                "responses": {
                    "200": answer(
                        {
                            "type": "object",
                            "properties": {
                                "count": count,
                                "next": {**text, "nullable": True},
                                "previous": {**text, "nullable": True},
                                "results": {"type": "array", "items": ref("Bulk")},
                            },
                        },
                        "A page of backfills and replays.",
                    ),
                    **errors("401", "404"),
                },
            },
        },
        hook + "/bulk/{bulk_uid}": {
            "parameters": params("form_uid", "hook_uid", "bulk_uid"),
            "get": {
                "summary": "A backfill's or replay's progress",
                "responses": {"200": answer(ref("Bulk"), "Its progress."), **errors("401", "404")},
            },
        },
        hook + "/bulk/{bulk_uid}/cancel": {
            "parameters": params("form_uid", "hook_uid", "bulk_uid"),
            "post": {
                "summary": "Cancel it: no more deliveries made, those not sent yet dropped "
                "(400 unless running)",
                "responses": {"200": answer(ref("Bulk"), "Its progress, cancelled."), **write},
            },
        },
    }
    dates = {
        "since": {
            **text,
            "nullable": True,
            "description": "ISO 8601 date or date-time (UTC if no offset), inclusive; "
            "absent: from the first.",
        },
        "until": {
            **text,
            "nullable": True,
            "description": "A date includes that day; a date-time is the exclusive end; "
            "absent: now.",
        },
    }
    statuses = {"type": "string", "enum": ["failed", "success"]}
    schemas = {
        "BackfillInput": {"type": "object", "properties": dates},
        "ReplayInput": {
            "type": "object",
            "properties": {
                "status": {
                    "oneOf": [statuses, {"type": "array", "items": statuses}],
                    "description": "Absent: both.",
                },
                **dates,
            },
        },
        "BulkStarted": {
            "type": "object",
            "properties": {
                "logs": {**count, "description": "Deliveries it will make (at most)."},
                "uid": text,
                "url": {**text, "format": "uri"},
            },
        },
        "Bulk": {
            "type": "object",
            "properties": {
                "uid": text,
                "url": {**text, "format": "uri"},
                "kind": {"type": "string", "enum": ["backfill", "replay"]},
                "state": {"type": "string", "enum": ["running", "done", "cancelled"]},
                "since": when,
                "until": {**when, "nullable": False},
                "statuses": {
                    "type": "array",
                    "items": statuses,
                    "description": "Replays only.",
                },
                "total": {**count, "description": "Counted when requested."},
                "created": {**count, "description": "Deliveries made (or restarted) so far."},
                "sent": {**count, "description": "Of those, attempted at least once."},
                "succeeded": count,
                "failed": count,
                "pending": {**count, "description": "Waiting for a first attempt or a retry."},
                "percent": {**count, "description": "Finished deliveries of the total."},
                "requested_by": text,
                "date_created": {**when, "nullable": False},
                "filled_at": {**when, "description": "When its last deliveries were made."},
                "cancelled_at": when,
                "finished_at": {**when, "description": "When nothing of it was left to send."},
            },
        },
    }
    return paths, schemas
