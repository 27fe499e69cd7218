"""Hooks (KoboToolbox's "REST services") of a form, and "retry all failed".

Validation is webapp.hook_settings', the same as the admin panel's.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from sqlalchemy import func, select

from webapp.api.common import bp, get_form, get_hook, invalid, json_body
from webapp.api.pagination import paginate
from webapp.api.serializers import hook_json, hooks_json
from webapp.delivery.retries import resume_paused, retry_failed
from webapp.extensions import db
from webapp.hook_settings import apply_hook_settings, clean_hook_settings
from webapp.models import Hook
from webapp.models.hooks import mask
from webapp.validation import english_errors

# Output-only fields: ignored when a client sends back what it got, as DRF does.
READ_ONLY_FIELDS = frozenset(
    {
        "uid",
        "url",
        "logs_url",
        "success_count",
        "failed_count",
        "pending_count",
        "date_created",
        "date_modified",
        "signing_secret",
    }
)


def _writable(values: dict[str, Any], hook: Hook | None) -> tuple[dict[str, Any], set[str]]:
    """`values` without output-only fields, and the names of the headers kept as stored.

    A client that GETs a hook and PATCHes it back sends `"••••23"` for a
    header value: that must not replace the real value with its mask. Those
    kept values are dropped if the endpoint moves to another origin
    (clean_hook_settings' `kept_headers`).
    """
    values = {k: v for k, v in values.items() if k not in READ_ONLY_FIELDS}
    settings = values.get("settings")
    if hook is None or not isinstance(settings, dict):
        return values, set()
    headers = settings.get("custom_headers")
    kept: set[str] = set()
    if isinstance(headers, dict):
        stored = hook.custom_headers
        kept = {n for n, v in headers.items() if n in stored and v == mask(stored[n])}
        headers = {name: stored[name] if name in kept else v for name, v in headers.items()}
        values["settings"] = {**settings, "custom_headers": headers}
    return values, kept


@bp.get("/forms/<form_uid>/hooks")
def hook_list(form_uid: str):
    form = get_form(form_uid)
    query = select(Hook).where(Hook.form_id == form.id).order_by(Hook.id)
    return paginate(
        query,
        lambda rows: hooks_json([row[0] for row in rows]),
        count_query=select(func.count()).select_from(Hook).where(Hook.form_id == form.id),
    )


@bp.post("/forms/<form_uid>/hooks")
def hook_create(form_uid: str):
    """Create a hook; it receives the submissions created from now on."""
    form = get_form(form_uid)
    cleaned, problems = clean_hook_settings(_writable(json_body(), None)[0])
    if problems:
        invalid(english_errors(problems))
    hook = Hook(form=form, name=cleaned["name"], endpoint=cleaned["endpoint"])
    apply_hook_settings(hook, cleaned)
    db.session.add(hook)
    db.session.commit()
    body = hook_json(hook)
    return body, 201, {"Location": body["url"]}


@bp.get("/forms/<form_uid>/hooks/<hook_uid>")
def hook_detail(form_uid: str, hook_uid: str):
    return hook_json(get_hook(form_uid, hook_uid))


@bp.patch("/forms/<form_uid>/hooks/<hook_uid>")
def hook_update(form_uid: str, hook_uid: str):
    """Change some fields. Enabling a disabled hook sends what it parked meanwhile."""
    hook = get_hook(form_uid, hook_uid)
    values, kept = _writable(json_body(), hook)
    cleaned, problems = clean_hook_settings(values, hook=hook, kept_headers=kept)
    if problems:
        invalid(english_errors(problems))
    was_active = hook.active
    apply_hook_settings(hook, cleaned)
    db.session.commit()
    if hook.active and not was_active:
        resume_paused(hook)
    return hook_json(hook)


@bp.delete("/forms/<form_uid>/hooks/<hook_uid>")
def hook_delete(form_uid: str, hook_uid: str):
    """Delete a hook and its logs; queued jobs for them then do nothing."""
    db.session.delete(get_hook(form_uid, hook_uid))
    db.session.commit()
    return Response(status=204)


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/retry")
def hook_retry(form_uid: str, hook_uid: str):
    """Retry every failed log of the hook, each in a fresh series."""
    hook = get_hook(form_uid, hook_uid)
    if not hook.active:
        invalid({"non_field_errors": ["The hook is disabled: enable it before retrying."]})
    count = retry_failed(hook)
    detail = f"{count} failed log(s) queued for a retry." if count else "No failed logs to retry."
    return {"detail": detail, "count": count}
