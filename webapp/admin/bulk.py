"""A hook's "Send again" page: backfill, replay, their progress (a bar that updates) and cancel.

The same functions as the API's (webapp.bulk), checked by webapp.bulk.ranges
and worded here in the reader's language. `progress` answers JSON for the
page's script (static/bulk_progress.js), which moves the bars while a send
runs; without the script the page shows the progress as of its loading.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from webapp.admin.hook_editing import translate
from webapp.admin.lookups import form_or_404, hook_or_404
from webapp.admin.permissions import protect
from webapp.admin.webforms import BackfillForm, ConfirmForm, ReplayForm
from webapp.api.common import isoformat
from webapp.bulk.cancel import cancel as cancel_bulk
from webapp.bulk.progress import progress as progress_of
from webapp.bulk.ranges import parse_backfill, parse_replay
from webapp.bulk.start import start_backfill, start_replay
from webapp.extensions import db
from webapp.models import BulkSend, Form, Hook
from webapp.models.base import utcnow
from webapp.validation import Problem

bp = Blueprint("bulk", __name__)
protect(bp)

BASE = "/forms/<form_uid>/hooks/<hook_uid>/bulk"
SHOWN = 20  # the latest bulk sends listed on the page


def _forms() -> tuple[BackfillForm, ReplayForm]:
    return BackfillForm(prefix="backfill"), ReplayForm(prefix="replay")


@bp.get(BASE)
def index(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    return _page(form, hook_or_404(form, hook_uid), *_forms())


def _page(form: Form, hook: Hook, backfill, replay, errors=None, status: int = 200):
    sends = db.session.scalars(
        select(BulkSend)
        .where(BulkSend.hook_id == hook.id)
        .order_by(BulkSend.date_created.desc(), BulkSend.id.desc())
        .limit(SHOWN)
    ).all()
    return (
        render_template(
            "bulk/index.html",
            form=form,
            hook=hook,
            backfill=backfill,
            replay=replay,
            errors=errors or {},
            # (send, its progress, the last day it covers: `until` is exclusive)
            sends=[
                (send, progress_of(send), send.until - timedelta(microseconds=1)) for send in sends
            ],
            action_form=ConfirmForm(),
        ),
        status,
    )


@bp.post(BASE + "/backfill")
def backfill(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    backfill_form, replay_form = _forms()
    values = {"since": backfill_form.since.data, "until": backfill_form.until.data}
    return _start(form, hook, backfill_form, replay_form, "backfill", values)


@bp.post(BASE + "/replay")
def replay(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    backfill_form, replay_form = _forms()
    chosen = replay_form.status.data
    values = {
        "status": ["failed", "success"] if chosen == "both" else chosen,
        "since": replay_form.since.data,
        "until": replay_form.until.data,
    }
    return _start(form, hook, backfill_form, replay_form, "replay", values)


def _start(form: Form, hook: Hook, backfill_form, replay_form, kind: str, values: dict):
    # CSRFProtect checked the token before the view; webapp.bulk.ranges checks the rest.
    parse, start = (
        (parse_backfill, start_backfill) if kind == "backfill" else (parse_replay, start_replay)
    )
    wanted, problems = parse(values, utcnow())
    if not hook.active:
        problems.append(Problem("non_field_errors", "hook.disabled"))
    if problems:
        errors: dict[str, list[str]] = {}
        for problem in problems:
            errors.setdefault(f"{kind}-{problem.field}", []).append(translate(problem))
        if kind == "replay" and "replay-status" in errors:
            replay_form.status.data = "failed"  # the radios cannot show an unknown choice
        return _page(form, hook, backfill_form, replay_form, errors, 400)
    send = start(hook, wanted, current_user.email)
    if send.total == 0:
        flash(_("Nothing to send: every delivery in that range is there already."), "info")
    elif kind == "backfill":
        flash(
            ngettext(
                "%(num)d submission will be sent in the background.",
                "%(num)d submissions will be sent in the background.",
                send.total,
            ),
            "success",
        )
    else:
        flash(
            ngettext(
                "%(num)d delivery will be sent again in the background.",
                "%(num)d deliveries will be sent again in the background.",
                send.total,
            ),
            "success",
        )
    return redirect(url_for("bulk.index", form_uid=form.uid, hook_uid=hook.uid))


def _send_or_404(form_uid: str, hook_uid: str, bulk_uid: str) -> tuple[Form, Hook, BulkSend]:
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    send = db.session.scalar(
        select(BulkSend).where(BulkSend.hook_id == hook.id, BulkSend.uid == bulk_uid)
    )
    if send is None:
        abort(404)
    return form, hook, send


@bp.post(BASE + "/<bulk_uid>/cancel")
def cancel(form_uid: str, hook_uid: str, bulk_uid: str):
    form, hook, send = _send_or_404(form_uid, hook_uid, bulk_uid)
    if ConfirmForm().validate_on_submit():
        if cancel_bulk(send):
            flash(_("Cancelled: nothing more of it will be sent."), "success")
        else:
            flash(_("It had already finished."), "info")
    return redirect(url_for("bulk.index", form_uid=form.uid, hook_uid=hook.uid))


@bp.get(BASE + "/<bulk_uid>/progress")
def progress(form_uid: str, hook_uid: str, bulk_uid: str):
    """The progress as JSON, for the page's script (viewers may read it too)."""
    _, _, send = _send_or_404(form_uid, hook_uid, bulk_uid)
    shown = progress_of(send)
    for name in ("since", "until", "date_created", "filled_at", "cancelled_at", "finished_at"):
        shown[name] = isoformat(shown[name])
    response = jsonify(shown)
    response.headers["Cache-Control"] = "no-store"
    return response
