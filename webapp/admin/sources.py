"""The form page's Source tab: connect a form to an ODK Central form (docs/central.md).

Settings are checked by webapp.sources.settings, as in the API. "Test
connection" logs in to Central with the typed (or stored) login and lists
the projects and forms the user can read, to pick from; it stores nothing.
The password is write-only: never shown, kept when left empty.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, StringField

from webapp.admin.i18n import translate, translated_errors
from webapp.admin.lookups import form_or_404
from webapp.admin.permissions import protect
from webapp.admin.webforms import ConfirmForm
from webapp.extensions import db
from webapp.models import Form, Source
from webapp.sources.client import CentralClient, CentralError
from webapp.sources.settings import clean_source_settings, save_source

bp = Blueprint("sources", __name__)
protect(bp)

MAX_PROJECTS = 50


class SourceForm(FlaskForm):
    url = StringField(
        _l("Central server address"), description=_l("e.g. https://central.example.org")
    )
    email = StringField(_l("Email of a Central web user"))
    password = PasswordField(
        _l("Password"), description=_l("Leave empty to keep the stored password.")
    )
    project_id = StringField(_l("Project id"))
    xml_form_id = StringField(_l("Form id (xmlFormId)"))
    pick = SelectField(_l("Project and form"), choices=[], validate_choice=False)
    since = StringField(
        _l("Fetch submissions made since (optional)"),
        description=_l("A date such as 2026-01-31. Empty: only submissions made after connecting."),
    )
    active = BooleanField(_l("Active: fetch new submissions"), default=True)
    send_backfill = BooleanField(
        _l("Send what is fetched from before connecting"),
        description=_l(
            "Off: submissions made before connecting are stored but not sent to the REST "
            "services. On: they are sent too, like new ones."
        ),
    )


def _values(webform: SourceForm) -> dict[str, Any]:
    values: dict[str, Any] = {
        "kind": "odk_central",
        "url": webform.url.data or "",
        "email": webform.email.data or "",
        "password": webform.password.data or "",
        "project_id": (webform.project_id.data or "").strip(),
        "xml_form_id": webform.xml_form_id.data or "",
        "since": (webform.since.data or "").strip() or None,
        "active": bool(webform.active.data),
        "send_backfill": bool(webform.send_backfill.data),
    }
    project, sep, form_id = (webform.pick.data or "").partition(":")
    if sep and project.isdigit():  # picked from the lists of "Test connection"
        values["project_id"], values["xml_form_id"] = project, form_id
    return values


@bp.route("/forms/<form_uid>/source", methods=["GET", "POST"])
def edit(form_uid: str):
    form = form_or_404(form_uid)
    source = form.source
    webform = SourceForm()
    errors: dict[str, list[str]] = {}
    found = None
    if request.method == "GET" and source is not None:
        _fill(webform, source)
    elif request.method == "POST" and webform.validate_on_submit():
        values = _values(webform)
        if request.form.get("action") == "test":
            found = _test(values, source)
        else:
            cleaned, problems = clean_source_settings(values, source=source)
            if not problems:
                return _save(form, cleaned)
            errors = translated_errors(problems)
    return (
        render_template(
            "sources/edit.html",
            form=form,
            source=source,
            webform=webform,
            errors=errors,
            found=found,
            action_form=ConfirmForm(),
        ),
        400 if errors else 200,
    )


def _fill(webform: SourceForm, source: Source) -> None:
    webform.url.data = source.url
    webform.email.data = source.email
    webform.project_id.data = str(source.project_id)
    webform.xml_form_id.data = source.xml_form_id
    webform.since.data = source.since.date().isoformat() if source.since else ""
    webform.active.data = source.active
    webform.send_backfill.data = source.send_backfill


def _test(values: dict[str, Any], source: Source | None) -> dict[str, Any]:
    """Log in and list projects and forms; {"error": message} or {"projects": [...]}."""
    checks = {k: values[k] for k in ("url", "email")}
    cleaned, problems = clean_source_settings(checks, source=source or Source())
    if problems:
        return {"error": " ".join(translate(problem) for problem in problems)}
    password = values["password"] or (source.password if source is not None else "")
    if not password:
        return {"error": _("Enter the password.")}
    try:
        with CentralClient(
            cleaned["url"],
            cleaned["email"],
            password,
            allowed_networks=current_app.config["SSRF_ALLOWED_NETWORKS"],
        ) as client:
            client.login()
            projects = []
            for project in client.projects()[:MAX_PROJECTS]:
                forms = client.forms(project["id"])
                projects.append({"id": project["id"], "name": project.get("name"), "forms": forms})
    except CentralError as exc:
        return {"error": exc.message}
    return {"projects": projects}


def _save(form: Form, cleaned: dict[str, Any]):
    _source, created = save_source(form, cleaned)
    db.session.commit()
    if created:
        flash(
            _("Connected. New submissions in Central will be fetched within a minute or so."),
            "success",
        )
    else:
        flash(_("Source saved. The next fetch starts now."), "success")
    return redirect(url_for("sources.edit", form_uid=form.uid))


@bp.post("/forms/<form_uid>/source/delete")
def delete(form_uid: str):
    """Disconnect: nothing more is fetched; stored submissions stay."""
    form = form_or_404(form_uid)
    if ConfirmForm().validate_on_submit() and form.source is not None:
        db.session.delete(form.source)
        db.session.commit()
        flash(_("Disconnected from ODK Central. Stored submissions are kept."), "success")
    return redirect(url_for("sources.edit", form_uid=form.uid))
