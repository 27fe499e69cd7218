"""REST services ("hooks") of a form: list, create, edit, enable/disable, delete, test."""

from __future__ import annotations

from types import SimpleNamespace

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from webapp.admin import queries
from webapp.admin.hook_editing import (
    add_blank_header_rows,
    fill_form,
    kept_headers,
    posted_values,
    route_errors,
)
from webapp.admin.lookups import form_or_404, hook_or_404, latest_submission
from webapp.admin.permissions import editors_only, protect
from webapp.admin.previews import preview, send_test
from webapp.admin.webforms import ConfirmForm, HookForm
from webapp.delivery.retries import resume_paused
from webapp.extensions import db
from webapp.hook_settings import CLEARED, apply_hook_settings, clean_hook_settings
from webapp.models import Form, Hook

bp = Blueprint("hooks", __name__)
protect(bp)

TEST_RESULT = "hook_test_result"


@bp.get("/forms/<form_uid>/hooks")
def index(form_uid: str):
    form = form_or_404(form_uid)
    hooks = list(db.session.scalars(select(Hook).where(Hook.form_id == form.id).order_by(Hook.id)))
    return render_template(
        "hooks/index.html",
        form=form,
        hooks=hooks,
        counts=queries.hook_status_counts(hook.id for hook in hooks),
        action_form=ConfirmForm(),
    )


@bp.route("/forms/<form_uid>/hooks/new", methods=["GET", "POST"])
@editors_only
def new(form_uid: str):
    return _edit_page(form_or_404(form_uid), None)


@bp.route("/forms/<form_uid>/hooks/<hook_uid>", methods=["GET", "POST"])
def edit(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    return _edit_page(form, hook_or_404(form, hook_uid))


def _edit_page(form: Form, hook: Hook | None):
    """The hook page. POST with action=preview shows the body for unsaved settings."""
    webform = HookForm()
    errors: dict[str, list[str]] = {}
    latest = latest_submission(form)
    shown = hook
    if request.method == "GET" and hook is not None:
        fill_form(webform, hook)
    elif request.method == "POST":
        if not webform.validate_on_submit():
            errors["form"] = [_("Some fields need your attention.")]
        else:
            values, errors = posted_values(webform, hook)
            cleaned, problems = clean_hook_settings(
                values, hook=hook, kept_headers=kept_headers(webform, hook)
            )
            for slot, messages in route_errors(problems).items():
                errors.setdefault(slot, []).extend(messages)
            if not errors and request.form.get("action") != "preview":
                return _save(form, hook, cleaned)
            if not errors:
                shown = SimpleNamespace(
                    export_type=cleaned["export_type"],
                    subset_fields=cleaned["subset_fields"],
                    payload_template=cleaned["payload_template"],
                )
                flash(_("Preview updated with your changes. They are not saved yet."), "info")
    if current_user.can_edit:
        add_blank_header_rows(webform)
    status = 400 if errors else 200
    return (
        render_template(
            "hooks/edit.html",
            form=form,
            hook=hook,
            webform=webform,
            errors=errors,
            masked_headers=hook.settings_for_display()["custom_headers"] if hook else {},
            has_password=bool(hook and hook.password_encrypted),
            latest=latest,
            preview=preview(shown, form, latest) if (shown is not None and latest) else None,
            test_result=_pop_test_result(hook),
            action_form=ConfirmForm(),
        ),
        status,
    )


def _save(form: Form, hook: Hook | None, cleaned: dict):
    created = hook is None
    was_active = bool(hook and hook.active)
    if hook is None:
        hook = Hook(form=form)
        db.session.add(hook)
    apply_hook_settings(hook, cleaned)
    db.session.commit()
    if created:
        flash(
            _(
                "REST service “%(name)s” created. New submissions will be sent to it.",
                name=hook.name,
            ),
            "success",
        )
    else:
        flash(_("REST service “%(name)s” saved.", name=hook.name), "success")
        if cleaned.get(CLEARED):
            flash(
                _(
                    "The endpoint moved to another host: the values of these headers were "
                    "cleared, enter them again if it needs them: %(names)s.",
                    names=", ".join(cleaned[CLEARED]),
                ),
                "warning",
            )
        if hook.active and not was_active:
            _resume(hook)
    return redirect(url_for("hooks.edit", form_uid=form.uid, hook_uid=hook.uid))


def _resume(hook: Hook) -> None:
    resumed = resume_paused(hook)
    if resumed:
        flash(
            _("%(count)d waiting deliveries are being sent.", count=resumed),
            "info",
        )


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/toggle")
def toggle(form_uid: str, hook_uid: str):
    """Enable or disable; enabling sends the deliveries parked while disabled."""
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    if ConfirmForm().validate_on_submit():
        hook.active = not hook.active
        db.session.commit()
        if hook.active:
            flash(_("“%(name)s” is enabled.", name=hook.name), "success")
            _resume(hook)
        else:
            flash(
                _(
                    "“%(name)s” is disabled: it sends nothing until you enable it again, and "
                    "submissions received meanwhile will not be sent to it.",
                    name=hook.name,
                ),
                "warning",
            )
    return redirect(url_for("hooks.index", form_uid=form.uid))


@bp.route("/forms/<form_uid>/hooks/<hook_uid>/delete", methods=["GET", "POST"])
@editors_only
def delete(form_uid: str, hook_uid: str):
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    confirm = ConfirmForm()
    if confirm.validate_on_submit():
        name = hook.name
        db.session.delete(hook)
        db.session.commit()
        flash(_("REST service “%(name)s” and its logs were deleted.", name=name), "success")
        return redirect(url_for("hooks.index", form_uid=form.uid))
    counts = queries.hook_status_counts([hook.id])[hook.id]
    return render_template(
        "hooks/delete.html", form=form, hook=hook, confirm=confirm, logs=sum(counts.values())
    )


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/test")
def test(form_uid: str, hook_uid: str):
    """Send the latest submission (or a sample) once, with the saved settings."""
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    if ConfirmForm().validate_on_submit():
        result = send_test(hook, form, latest_submission(form))
        session[TEST_RESULT] = {
            "hook": hook.uid,
            "ok": result.ok,
            "summary": result.summary,
            "excerpt": result.excerpt,
        }
        if result.ok:
            flash(_("Test sent: the endpoint accepted it."), "success")
        else:
            flash(_("The test failed. See the details below."), "error")
    return redirect(url_for("hooks.edit", form_uid=form.uid, hook_uid=hook.uid) + "#test")


def _pop_test_result(hook: Hook | None) -> dict | None:
    result = session.pop(TEST_RESULT, None)
    if hook is None or not result or result.get("hook") != hook.uid:
        return None
    return result
