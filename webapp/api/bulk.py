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
