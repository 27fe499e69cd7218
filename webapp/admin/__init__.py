"""The server-rendered admin panel: blueprints and login wiring."""

from __future__ import annotations

from flask import Flask

from webapp.extensions import db, login_manager


def init_app(app: Flask) -> None:
    from webapp.admin import auth, dashboard
    from webapp.models import User

    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str):
        user = db.session.get(User, int(user_id))
        return user if user is not None and user.is_active else None

    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
