"""Log in, log out and choose the language.

Logging in is throttled per account: after MAX_FAILED_LOGINS wrong passwords
in a row the account is locked for LOCK_DURATION, whatever is typed.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.admin.i18n import SESSION_KEY
from webapp.admin.sessions import start_session
from webapp.admin.webforms import LanguageForm, LoginForm
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

bp = Blueprint("auth", __name__)

MAX_FAILED_LOGINS = 5
LOCK_DURATION = timedelta(minutes=15)
# Checked when the email is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash("formhooks-timing-equaliser")


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the dashboard."""
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login page; on success, back where the user was going."""
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user, problem = _authenticate(form.email.data, form.password.data)
        if user is not None:
            _remember_language(user)
            start_session(user)
            flash(_("Welcome, %(email)s.", email=user.email), "success")
            return redirect(safe_next(request.args.get("next")))
        flash(problem, "error")
        status = 429 if problem == _locked_message() else 400
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


def _locked_message() -> str:
    return _(
        "Too many failed attempts: this account is locked for %(minutes)d minutes. "
        "Try again later, or ask an administrator to reset your password.",
        minutes=int(LOCK_DURATION.total_seconds() // 60),
    )


def _authenticate(email: str, password: str) -> tuple[User | None, str]:
    """The user if the password is right; else None and what to tell them."""
    wrong = _("Wrong email or password.")
    user = User.by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None, wrong
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        return None, _locked_message()
    if user.is_active and user.check_password(password):
        user.failed_logins, user.locked_until, user.last_login = 0, None, now
        db.session.commit()
        return user, ""
    _count_failure(user, now)
    if user.locked_until is not None and user.locked_until > now:
        return None, _locked_message()
    return None, wrong


def _count_failure(user: User, now) -> None:
    user.failed_logins = User.failed_logins + 1  # atomic in SQL: parallel tries all count
    db.session.flush()
    db.session.refresh(user)
    if user.failed_logins >= MAX_FAILED_LOGINS:
        user.failed_logins = 0
        user.locked_until = now + LOCK_DURATION
    db.session.commit()


def _remember_language(user: User) -> None:
    """A language chosen before logging in becomes the user's, if they had none."""
    chosen = session.get(SESSION_KEY)
    if user.language is None and chosen:
        user.language = chosen
        db.session.commit()


@bp.post("/logout")
def logout():
    """Log out (POST only, with a CSRF token, so no link can log anyone out)."""
    language = session.get(SESSION_KEY)
    if current_user.is_authenticated:
        language = current_user.language or language
    logout_user()
    session.clear()
    if language:
        session[SESSION_KEY] = language
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.post("/language")
def set_language():
    """Switch language: saved on the user when logged in, else in the session."""
    form = LanguageForm()
    if form.validate_on_submit():
        language = form.language.data
        session[SESSION_KEY] = language
        if current_user.is_authenticated:
            current_user.language = language
            db.session.commit()
        with force_locale(language):
            flash(_("The panel is now in English."), "success")
    return redirect(safe_next(request.form.get("next")))
