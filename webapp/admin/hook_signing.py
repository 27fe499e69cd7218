"""A hook's signing secret in the panel: shown on request, rotated (docs/signatures.md).

Both are POSTs (CSRF token, editors and admins: `protect`), answered with a
page that holds the secret. It is never in the hook page itself, in the
session or in a redirect, and the answer is not cached (no-store).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, render_template
from flask_babel import gettext as _

from webapp.admin.lookups import form_or_404, hook_or_404
from webapp.admin.permissions import editors_only, protect
from webapp.admin.webforms import ConfirmForm
from webapp.extensions import db
from webapp.models import Form, Hook
from webapp.models.base import utcnow

bp = Blueprint("hook_signing", __name__)
protect(bp)


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/signing-secret")
@editors_only
def show(form_uid: str, hook_uid: str):
    """The hook's signing secret, for the editor who asked for it."""
    form, hook = _hook(form_uid, hook_uid)
    hook.ensure_signing_secret()
    return _page(form, hook)


@bp.post("/forms/<form_uid>/hooks/<hook_uid>/signing-secret/rotate")
@editors_only
def rotate(form_uid: str, hook_uid: str):
    """A new secret; the old one keeps signing for 24 hours."""
    form, hook = _hook(form_uid, hook_uid)
    hook.rotate_signing_secret()
    db.session.commit()
    flash(
        _(
            "A new signing secret was made. For 24 hours every send is signed with the new "
            "and the old secret: put the new one in the receiver before then."
        ),
        "warning",
    )
    return _page(form, hook)


def _hook(form_uid: str, hook_uid: str) -> tuple[Form, Hook]:
    form = form_or_404(form_uid)
    hook = hook_or_404(form, hook_uid)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return form, hook


def _page(form: Form, hook: Hook):
    return render_template(
        "hooks/signing_secret.html",
        form=form,
        hook=hook,
        secret=hook.readable_signing_secret(),
        previous_until=hook.previous_signs_until(utcnow()),
    )
