"""Who may do what in the panel (docs/admin.md, "Who can do what").

`protect(bp)` guards a whole blueprint, so no view can forget it: logged-out
visitors are sent to the login page, viewers may read but every POST of
theirs is refused with 403, and `admin_only` blueprints refuse everyone
but admins. The templates hide the buttons a user cannot use; this is what
actually refuses.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, current_app, request
from flask_login import current_user

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def protect(bp: Blueprint, *, admin_only: bool = False, viewers_may_post: bool = False) -> None:
    """Require a login on every route of `bp`, and the rights to change data."""

    @bp.before_request
    def _check_rights():
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if admin_only and not current_user.is_admin:
            abort(403)
        writing = request.method not in SAFE_METHODS and not viewers_may_post
        if writing and not current_user.can_edit:
            abort(403)
        return None


def editors_only(view):
    """For pages that only exist to change data (new, edit, delete): 403 for viewers."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if not current_user.can_edit:
            abort(403)
        return view(*args, **kwargs)

    return wrapper
