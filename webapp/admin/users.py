"""Staff accounts (administrators only): list, create, change role, deactivate, reset password."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from webapp.admin import throttle
from webapp.admin.permissions import protect
from webapp.admin.sessions import end_other_sessions, refresh_fingerprint
from webapp.admin.webforms import UserCreateForm, UserEditForm
from webapp.extensions import db
from webapp.models import User

bp = Blueprint("users", __name__)
protect(bp, admin_only=True)


@bp.get("/users")
def index():
    users = list(db.session.scalars(select(User).order_by(User.email)))
    return render_template("users/index.html", users=users)


@bp.route("/users/new", methods=["GET", "POST"])
def new():
    webform = UserCreateForm()
    if webform.validate_on_submit():
        email = User.normalize_email(webform.email.data)
        if User.by_email(email) is not None:
            webform.email.errors.append(_("A user with this email already exists."))
        else:
            user = User(email=email, role=webform.role.data)
            user.set_password(webform.password.data)
            db.session.add(user)
            db.session.commit()
            flash(
                _(
                    "Account %(email)s created. Give them their password by a safe channel.",
                    email=email,
                ),
                "success",
            )
            return redirect(url_for("users.index"))
    return render_template("users/new.html", webform=webform), 400 if webform.errors else 200


def _active_admins_besides(user: User) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.is_active_user.is_(True), User.id != user.id)
    )


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def edit(user_id: int):
    user = db.session.get(User, user_id)
    if user is None:
        return render_template(
            "errors/error.html",
            code=404,
            title=_("No such user"),
            message=_("This account does not exist."),
        ), 404
    webform = UserEditForm(obj=user, active=user.is_active_user)
    if webform.validate_on_submit():
        problem = _lockout_problem(user, webform)
        if problem:
            flash(problem, "error")
        else:
            _apply(user, webform)
            return redirect(url_for("users.index"))
    status = 400 if webform.errors else 200
    return render_template("users/edit.html", user=user, webform=webform), status


def _lockout_problem(user: User, webform: UserEditForm) -> str | None:
    """Refuse changes that would leave nobody able to manage users."""
    demoted = webform.role.data != "admin" or not webform.active.data
    last_admin = user.role == "admin" and user.is_active_user
    if last_admin and demoted and _active_admins_besides(user) == 0:
        return _("This is the last active administrator: make another user an administrator first.")
    if user.id == current_user.id and not webform.active.data:
        return _("You cannot deactivate your own account.")
    return None


def _apply(user: User, webform: UserEditForm) -> None:
    user.role = webform.role.data
    user.is_active_user = bool(webform.active.data)
    messages = [_("Account %(email)s saved.", email=user.email)]
    if webform.new_password.data:
        user.set_password(webform.new_password.data)
        throttle.forget_account(user.email)
        messages.append(_("The new password works now; the old one no longer does."))
    db.session.commit()
    if webform.new_password.data:
        end_other_sessions(user)
    if user.id == current_user.id:
        refresh_fingerprint(user)
    flash(" ".join(messages), "success")
