"""Log in, log out and choose the language.

Logging in is throttled by client address and account together
(webapp.admin.throttle): a stranger's failures never lock the owner out from
another address. Unknown and known emails get the same answers, after the
same work (a password hash is checked either way).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.admin import throttle
from webapp.admin.i18n import SESSION_KEY
from webapp.admin.sessions import end_session, start_session
from webapp.admin.webforms import LanguageForm, LoginForm
from webapp.extensions import db
from webapp.models import User
from webapp.models.base import utcnow

bp = Blueprint("auth", __name__)

# Checked when the email is unknown (or the account inactive), so every case takes as long.
_DUMMY_HASH = generate_password_hash("formhooks-timing-equaliser")


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the dashboard.

    Control characters (CR, LF, tab...) are refused: they have no place in a
    path and would break the Location header.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and target.isprintable()
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
        user, status = _authenticate(form.email.data, form.password.data)
        if user is not None:
            _remember_language(user)
            start_session(user)
            flash(_("Welcome, %(email)s.", email=user.email), "success")
            return redirect(safe_next(request.args.get("next")))
        if status == 429:
            flash(_throttled_message(), "error")
        else:
            flash(_("Wrong email or password."), "error")
    elif request.method == "POST":
        status = 400
    return render_template("auth/login.html", form=form), status


def _throttled_message() -> str:
    return _(
        "Too many failed attempts: try again in %(minutes)d minutes, "
        "or ask an administrator to reset your password.",
        minutes=int(throttle.LOCK_DURATION.total_seconds() // 60),
    )


def _client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def _authenticate(email: str, password: str) -> tuple[User | None, int]:
    """The user if the password is right, else None and the status to answer (400, 429).

    The same steps run for unknown, inactive and known emails alike.
    """
    address, account = _client_address(), User.normalize_email(email)
    now = utcnow()
    if throttle.is_blocked(address, account, now):
        return None, 429
    user = User.by_email(account)
    stored_hash = user.password_hash if user is not None else _DUMMY_HASH
    right = check_password_hash(stored_hash, password)
    if user is not None and user.is_active and right:
        throttle.record_success(address, account)
        user.last_login = now
        db.session.commit()
        return user, 200
    blocked = throttle.record_failure(address, account, now)
    return None, 429 if blocked else 400


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
    end_session()
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
