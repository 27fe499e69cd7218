"""Delivery logs of a hook: filtered, paginated table, detail with attempts, retries."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from webapp.admin.auth import safe_next
from webapp.admin.log_queries import (
    LogFilters,
    capped_count,
    log_page,
    status_tab_counts,
)
from webapp.admin.lookups import form_or_404, hook_or_404, log_or_404
from webapp.admin.permissions import protect
from webapp.admin.previews import preview
from webapp.admin.webforms import ConfirmForm
from webapp.delivery.retries import retry_failed, retry_log
from webapp.extensions import db
from webapp.models import FAILED
from webapp.models.hooks import mask

bp = Blueprint("logs", __name__)
protect(bp)

BASE = "/forms/<form_uid>/hooks/<hook_uid>/logs"


def _cursor(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.get(BASE)
def index(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    filters = LogFilters.from_args(request.args)
    for problem in filters.problems:
        flash(problem, "warning")
    page = log_page(hook, filters, before=_cursor("before"), after=_cursor("after"))
    counts = status_tab_counts(hook)
    return render_template(
        "logs/index.html",
        form=form,
        hook=hook,
        filters=filters,
        page=page,
        counts=counts,
        total=sum(counts.values()),
        matching=_matching(hook, filters, page),
        action_form=ConfirmForm(),
    )


def _matching(hook, filters: LogFilters, page) -> tuple[int, bool] | None:
    """How many logs match date or search filters; counted only beyond one page."""
    if not filters.narrowed:
        return None
    if page.at_start and page.older is None:
        return len(page.rows), False
    return capped_count(hook, filters)


@bp.post(BASE + "/retry")
def retry_all(form_uid: str, hook_uid: str):
    """Retry every failed log of the hook (each starts a fresh series)."""
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    if ConfirmForm().validate_on_submit():
        count = retry_failed(hook)
        if count:
            flash(
                ngettext(
                    "%(num)d failed delivery will be sent again.",
                    "%(num)d failed deliveries will be sent again.",
                    count,
                ),
                "success",
            )
        else:
            flash(_("There was no failed delivery to retry."), "info")
    fallback = url_for("logs.index", form_uid=form.uid, hook_uid=hook.uid, status=FAILED)
    return redirect(_back(fallback))


def _back(fallback: str) -> str:
    target = request.form.get("next")
    return safe_next(target) if target else fallback


@bp.get(BASE + "/<log_uid>")
def detail(form_uid: str, hook_uid: str, log_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    entry = log_or_404(hook, log_uid)
    return render_template(
        "logs/detail.html",
        form=form,
        hook=hook,
        entry=entry,
        submission=entry.submission,
        attempts=entry.attempts,
        preview=preview(hook, form, entry.submission),
        headers=_headers_sent(hook, entry.uid),
        action_form=ConfirmForm(),
    )


def _headers_sent(hook, log_uid: str) -> list[tuple[str, str]]:
    """The headers of a send, secrets masked."""
    content_type = "application/json" if hook.export_type == "json" else "application/xml"
    headers = [
        ("Content-Type", content_type),
        ("X-Formhooks-Delivery", log_uid),
        # Standard Webhooks (docs/signatures.md): made anew at each try.
        ("webhook-id", log_uid),
        ("webhook-timestamp", _("(the time of each try)")),
        ("webhook-signature", _("v1,… (signed at each try)")),
    ]
    if hook.auth_level == "basic_auth":
        headers.append(("Authorization", f"Basic ({hook.username}:{mask(hook.password)})"))
    headers.extend(hook.settings_for_display()["custom_headers"].items())
    return headers


@bp.post(BASE + "/<log_uid>/retry")
def retry(form_uid: str, hook_uid: str, log_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    entry = log_or_404(hook, log_uid)
    if ConfirmForm().validate_on_submit():
        if retry_log(entry):
            flash(_("The delivery will be sent again in a moment."), "success")
        else:
            flash(
                _(
                    "Only a failed delivery can be retried; this one is %(status)s.",
                    status=_status_label(entry.status),
                ),
                "info",
            )
    db.session.expire_all()
    fallback = url_for("logs.detail", form_uid=form.uid, hook_uid=hook.uid, log_uid=entry.uid)
    return redirect(_back(fallback))


def _status_label(status: str) -> str:
    return {"pending": _("pending"), "success": _("delivered"), "failed": _("failed")}.get(
        status, status
    )
