"""The server-rendered admin panel: blueprints, login wiring, error pages.

Blueprints (one module each): auth, dashboard, forms, submissions, hooks,
bulk (a hook's backfill and replay), hook_signing, sources, logs, users,
profile. Every page except the login page needs a logged-in user; every
POST that changes data needs an editor or an admin
(`webapp.admin.permissions`). Templates live in templates/<blueprint>/.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from webapp.extensions import login_manager


def init_app(app: Flask) -> None:
    """Register the admin blueprints, the login manager and the error pages."""
    from webapp.admin import (
        auth,
        bulk,
        dashboard,
        errors,
        forms,
        hook_signing,
        hooks,
        logs,
        profile,
        sources,
        submissions,
        users,
    )
    from webapp.admin.sessions import load_user

    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please log in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.user_loader(load_user)

    for module in (auth, dashboard, forms, submissions, hooks, bulk, sources, logs, users, profile):
        app.register_blueprint(module.bp)
    app.register_blueprint(hook_signing.bp)
    errors.init_app(app)
    app.context_processor(_template_context)


def _template_context() -> dict:
    """What every template may use: the user's rights and the page's language."""
    from flask_babel import get_locale
    from flask_login import current_user

    user = current_user
    logged_in = bool(user and user.is_authenticated)
    return {
        "can_edit": logged_in and user.can_edit,
        "is_admin": logged_in and user.is_admin,
        "current_language": str(get_locale() or "en"),
    }
