"""Admin actions: send a test email, send the failure report now.

Both are POST forms (CSRF-protected by the app's CSRFProtect) for admins;
they redirect to the dashboard with a flash message saying what happened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from flask import Blueprint, abort, current_app, flash, redirect, url_for
from flask_login import current_user, login_required

from webapp.reports.i18n import _
from webapp.reports.mailer import SEND_ERRORS, describe, mail_status, smtp_session
from webapp.reports.render import mail_check_message
from webapp.reports.sending import send_reports

log = logging.getLogger(__name__)
bp = Blueprint("reports", __name__, url_prefix="/admin/reports")


def admin_only(view: Callable) -> Callable:
    """403 unless the logged-in user is an admin (put under @login_required)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.post("/test-email")
@login_required
@admin_only
def send_test_email():
    """Send a test email to the logged-in admin."""
    status = mail_status(current_app)
    if status is not None:
        flash(status, "error")
        return redirect(url_for("dashboard.index"))
    recipient = current_user.email
    try:
        with smtp_session() as send:
            send(mail_check_message(recipient, current_user.language))
    except SEND_ERRORS as exc:
        log.warning("Test email to %s not sent: %s", recipient, describe(exc))
        flash(_("The test email could not be sent: %(error)s", error=describe(exc)), "error")
    else:
        flash(_("A test email was sent to %(email)s.", email=recipient), "success")
    return redirect(url_for("dashboard.index"))


@bp.post("/send-now")
@login_required
@admin_only
def send_now():
    """Send the failure digests due now, without waiting for the schedule."""
    result = send_reports()
    flash(result.summary(), "success" if result.ok else "error")
    return redirect(url_for("dashboard.index"))
