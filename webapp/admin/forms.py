"""Forms: list, create, edit, delete, and the page with the webhook URL and token."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from wtforms import SelectChoice

from webapp.admin import queries
from webapp.admin.lookups import form_or_404, latest_submission
from webapp.admin.permissions import editors_only, protect
from webapp.admin.webforms import ConfirmForm, FormForm
from webapp.extensions import db
from webapp.models import Form, Hook, User, form_submission_counts
from webapp.models.hooks import mask

bp = Blueprint("forms", __name__)
protect(bp)


def ingest_url(form: Form) -> str:
    """The form's webhook URL, on BASE_URL when it is set."""
    path = url_for("ingest.receive", form_uid=form.uid)
    base = current_app.config["BASE_URL"]
    return base + path if base else url_for("ingest.receive", form_uid=form.uid, _external=True)


def _owner_choices() -> list[SelectChoice]:
    users = db.session.scalars(
        select(User).where(User.is_active_user.is_(True)).order_by(User.email)
    )
    return [SelectChoice(user.id, user.email) for user in users]


@bp.get("/forms")
def index():
    forms = list(db.session.scalars(select(Form).order_by(func.lower(Form.name), Form.id)))
    ids = [form.id for form in forms]
    return render_template(
        "forms/index.html",
        forms=forms,
        stats=queries.form_submission_stats(ids),
        hook_counts=queries.form_hook_counts(ids),
    )


@bp.route("/forms/new", methods=["GET", "POST"])
@editors_only
def new():
    webform = FormForm()
    webform.owner_id.choices = _owner_choices()
    if webform.owner_id.data is None:
        webform.owner_id.data = current_user.id
    if webform.validate_on_submit():
        form = Form(name=webform.name.data.strip(), owner_id=webform.owner_id.data)
        db.session.add(form)
        db.session.commit()
        flash(
            _(
                "Form “%(name)s” created. Connect your form system to the webhook URL below.",
                name=form.name,
            ),
            "success",
        )
        return redirect(url_for("forms.detail", form_uid=form.uid))
    return render_template("forms/edit.html", webform=webform, form=None)


@bp.get("/forms/<form_uid>")
def detail(form_uid: str):
    form = form_or_404(form_uid)
    count, last = queries.form_submission_stats([form.id])[form.id]
    hooks = list(db.session.scalars(select(Hook).where(Hook.form_id == form.id).order_by(Hook.id)))
    token = _displayed_token(form)
    return render_template(
        "forms/detail.html",
        form=form,
        url=ingest_url(form),
        token=token,
        token_hidden=not current_user.can_edit,
        submission_count=count,
        last_received=last,
        hooks=hooks,
        hook_counts=queries.hook_status_counts(hook.id for hook in hooks),
        latest=latest_submission(form) if count else None,
        action_form=ConfirmForm(),
    )


def _displayed_token(form: Form) -> str | None:
    """The token for editors; masked for viewers (it lets anyone post data)."""
    try:
        token = form.ingest_token
    except ValueError:  # stored with a key that is no longer configured
        return None
    return token if current_user.can_edit else mask(token)


@bp.route("/forms/<form_uid>/edit", methods=["GET", "POST"])
@editors_only
def edit(form_uid: str):
    form = form_or_404(form_uid)
    webform = FormForm(obj=form)
    webform.owner_id.choices = _owner_choices()
    if form.owner_id not in {choice.value for choice in webform.owner_id.choices}:
        webform.owner_id.choices.append(SelectChoice(form.owner_id, form.owner.email))
    if webform.validate_on_submit():
        form.name = webform.name.data.strip()
        form.owner_id = webform.owner_id.data
        db.session.commit()
        flash(_("Form “%(name)s” saved.", name=form.name), "success")
        return redirect(url_for("forms.detail", form_uid=form.uid))
    return render_template("forms/edit.html", webform=webform, form=form)


@bp.route("/forms/<form_uid>/delete", methods=["GET", "POST"])
@editors_only
def delete(form_uid: str):
    """GET: what would be deleted, and a button. POST: delete."""
    form = form_or_404(form_uid)
    confirm = ConfirmForm()
    if confirm.validate_on_submit():
        name = form.name
        db.session.delete(form)
        db.session.commit()
        flash(_("Form “%(name)s” and all its data were deleted.", name=name), "success")
        return redirect(url_for("forms.index"))
    submissions = form_submission_counts([form.id])[form.id]
    hooks = db.session.scalar(select(func.count()).select_from(Hook).where(Hook.form_id == form.id))
    return render_template(
        "forms/delete.html", form=form, confirm=confirm, submissions=submissions, hooks=hooks
    )


@bp.post("/forms/<form_uid>/token")
def regenerate_token(form_uid: str):
    """A new ingest token; the old one stops working at once."""
    form = form_or_404(form_uid)
    if ConfirmForm().validate_on_submit():
        form.regenerate_ingest_token()
        db.session.commit()
        flash(
            _(
                "A new token was created. The old one no longer works: update it in every "
                "system that sends to this form."
            ),
            "warning",
        )
    return redirect(url_for("forms.detail", form_uid=form.uid) + "#token")
