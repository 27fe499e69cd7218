"""Delivery logs of a hook, and the retry of one failed log."""

from __future__ import annotations

from flask import request
from sqlalchemy import Select, func, select

from webapp.api.common import bp, fail, get_hook, invalid, parse_when
from webapp.api.pagination import paginate
from webapp.api.serializers import log_json
from webapp.delivery.retries import retry_log
from webapp.extensions import db
from webapp.models import STATUSES, DeliveryLog, Hook, Submission

# KoboToolbox's numeric statuses, accepted so its scripts' filters keep working.
KOBO_STATUSES = {"0": "failed", "1": "pending", "2": "success"}


def _filters(hook: Hook) -> list:
    """WHERE clauses from ?status=, ?start_date= (inclusive) and ?end_date= (exclusive).

    They match the index (hook_id, status, date_created).
    """
    clauses = [DeliveryLog.hook_id == hook.id]
    status = request.args.get("status", "").strip().lower()
    if status:
        status = KOBO_STATUSES.get(status, status)
        if status not in STATUSES:
            invalid({"status": [f"Must be one of: {', '.join(STATUSES)}."]})
        clauses.append(DeliveryLog.status == status)
    if request.args.get("start_date"):
        start = parse_when(request.args["start_date"], "start_date")
        clauses.append(DeliveryLog.date_created >= start)
    if request.args.get("end_date"):
        end = parse_when(request.args["end_date"], "end_date", end=True)
        clauses.append(DeliveryLog.date_created < end)
    return clauses


@bp.get("/forms/<form_uid>/hooks/<hook_uid>/logs")
def log_list(form_uid: str, hook_uid: str):
    """The hook's logs, newest first, filtered; without attempts (see the detail)."""
    hook = get_hook(form_uid, hook_uid)
    clauses = _filters(hook)
    query: Select = (
        select(DeliveryLog, Submission.instance_id)
        .join(Submission, Submission.id == DeliveryLog.submission_id)
        .where(*clauses)
        .order_by(DeliveryLog.date_created.desc(), DeliveryLog.id.desc())
    )
    return paginate(
        query,
        lambda rows: [
            log_json(entry, instance_id, form_uid=form_uid, hook_uid=hook_uid)
            for entry, instance_id in rows
        ],
        count_query=select(func.count()).select_from(DeliveryLog).where(*clauses),
    )


def _get_log(hook: Hook, log_uid: str) -> tuple[DeliveryLog, str]:
    row = db.session.execute(
        select(DeliveryLog, Submission.instance_id)
        .join(Submission, Submission.id == DeliveryLog.submission_id)
        .where(DeliveryLog.hook_id == hook.id, DeliveryLog.uid == log_uid)
    ).first()
    if row is None:
        fail(404, f"No log with uid {log_uid!r} for hook {hook.uid!r}.")
    return row[0], row[1]


@bp.get("/forms/<form_uid>/hooks/<hook_uid>/logs/<log_uid>")
def log_detail(form_uid: str, hook_uid: str, log_uid: str):
    entry, instance_id = _get_log(get_hook(form_uid, hook_uid), log_uid)
    return log_json(entry, instance_id, form_uid=form_uid, hook_uid=hook_uid, detail=True)


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/logs/<log_uid>/retry")
def log_retry(form_uid: str, hook_uid: str, log_uid: str):
    """Retry one failed log in a fresh series; 400 if it is not failed."""
    hook = get_hook(form_uid, hook_uid)
    entry, instance_id = _get_log(hook, log_uid)
    if not hook.active:
        invalid({"non_field_errors": ["The hook is disabled: enable it before retrying."]})
    if not retry_log(entry):
        db.session.refresh(entry)
        invalid({"status": [f"Only a failed log can be retried; this one is {entry.status}."]})
    db.session.refresh(entry)
    return log_json(entry, instance_id, form_uid=form_uid, hook_uid=hook_uid, detail=True)
