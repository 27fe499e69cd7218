"""Everyone's own page: language, failure reports, password, API tokens.

Viewers may use it too: these forms change only the user's own account.
A new API token is shown once, in the answer to the POST that created it
(never stored in the session cookie), with the page marked no-store.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from webapp.admin.i18n import SESSION_KEY
from webapp.admin.permissions import protect
from webapp.admin.sessions import end_other_sessions, refresh_fingerprint
from webapp.admin.webforms import (
    PasswordChangeForm,
    PreferencesForm,
    TokenCreateForm,
    TokenRevokeForm,
)
from webapp.extensions import db
from webapp.models import ApiToken

bp = Blueprint("profile", __name__)
protect(bp, viewers_may_post=True)

ACTIONS = ("preferences", "password", "token_create", "token_revoke")


@bp.route("/profile", methods=["GET", "POST"])
def index():
    user = current_user
    action = request.form.get("action") if request.method == "POST" else None

    def posted(key: str) -> dict:
        """Only the form that was submitted reads the request; the others show saved data."""
        return {} if key == action else {"formdata": None}

    forms = {
        "preferences": PreferencesForm(
            prefix="prefs",
            language=user.language or "en",
            report_opt_in=user.report_opt_in,
            **posted("preferences"),
        ),
        "password": PasswordChangeForm(prefix="pw", **posted("password")),
        "token_create": TokenCreateForm(prefix="token", **posted("token_create")),
        "token_revoke": TokenRevokeForm(prefix="revoke", **posted("token_revoke")),
    }
    new_token = None
    status = 200
    if action in ACTIONS:
        form = forms[action]
        if form.validate_on_submit():
            result = HANDLERS[action](form)
            if isinstance(result, str):
                new_token = result
            elif result is not None:
                return result
        if form.errors:
            status = 400
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())
    )
    return render_template(
        "profile/index.html", forms=forms, tokens=list(tokens), new_token=new_token
    ), status


def _preferences(form: PreferencesForm):
    current_user.language = form.language.data
    current_user.report_opt_in = bool(form.report_opt_in.data)
    session[SESSION_KEY] = form.language.data
    db.session.commit()
    flash(_("Your preferences are saved."), "success")
    return redirect(url_for("profile.index"))


def _password(form: PasswordChangeForm):
    if not current_user.check_password(form.current_password.data):
        form.current_password.errors.append(_("This is not your current password."))
        return None
    current_user.set_password(form.new_password.data)
    db.session.commit()
    end_other_sessions(current_user)
    refresh_fingerprint(current_user)
    flash(
        _("Your password is changed. Other devices logged in with the old one are logged out."),
        "success",
    )
    return redirect(url_for("profile.index"))


def _token_create(form: TokenCreateForm) -> str:
    _token, plaintext = ApiToken.issue(current_user, name=form.token_name.data.strip())
    db.session.commit()
    flash(_("Token created. Copy it now: it will not be shown again."), "success")
    form.token_name.data = ""
    return plaintext


def _token_revoke(form: TokenRevokeForm):
    token_id = form.token_id.data
    token = db.session.get(ApiToken, int(token_id)) if token_id.isdigit() else None
    if token is None or token.user_id != current_user.id:
        flash(_("This token does not exist (any more)."), "error")
    else:
        name = token.name or token.prefix
        db.session.delete(token)
        db.session.commit()
        flash(_("Token “%(name)s” revoked: it no longer works.", name=name), "success")
    return redirect(url_for("profile.index"))


HANDLERS = {
    "preferences": _preferences,
    "password": _password,
    "token_create": _token_create,
    "token_revoke": _token_revoke,
}
