"""Rows the URLs name (form uid, hook uid, log uid), or 404."""

from __future__ import annotations

from flask import abort
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import DeliveryLog, Form, Hook, Submission


def form_or_404(form_uid: str) -> Form:
    form = db.session.scalar(select(Form).where(Form.uid == form_uid))
    if form is None:
        abort(404)
    return form


def hook_or_404(form: Form, hook_uid: str) -> Hook:
    hook = db.session.scalar(select(Hook).where(Hook.uid == hook_uid, Hook.form_id == form.id))
    if hook is None:
        abort(404)
    return hook


def log_or_404(hook: Hook, log_uid: str) -> DeliveryLog:
    entry = db.session.scalar(
        select(DeliveryLog).where(DeliveryLog.uid == log_uid, DeliveryLog.hook_id == hook.id)
    )
    if entry is None:
        abort(404)
    return entry


def submission_or_404(form: Form, submission_id: int) -> Submission:
    submission = db.session.get(Submission, submission_id)
    if submission is None or submission.form_id != form.id:
        abort(404)
    return submission


def latest_submission(form: Form) -> Submission | None:
    """The form's newest received submission or version (index form_id, created_at)."""
    return db.session.scalar(
        select(Submission)
        # Not a placeholder: an instance id an edit named, with no body yet.
        .where(Submission.form_id == form.id, Submission.received.is_(True))
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(1)
    )
