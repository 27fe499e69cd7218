"""Formhooks: a self-hosted "REST Services" relay for form submissions."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask

__version__ = "0.1.0"

log = logging.getLogger(__name__)


def create_app(overrides: Mapping[str, str] | None = None) -> Flask:
    """Build the app. Configuration comes from the environment, read here.

    `overrides` are environment-style values (strings, as in os.environ) laid
    over the real environment, so tests go through the same strict parsing.
    """
    from webapp import cli, health, log_format, metrics, proxies, tasks
    from webapp.admin import init_app as init_admin
    from webapp.admin.i18n import init_i18n
    from webapp.admin.security import init_security
    from webapp.api import init_app as init_api
    from webapp.attachments.views import init_app as init_attachments
    from webapp.config import load_config
    from webapp.crypto import SecretBox
    from webapp.delivery import init_app as init_delivery
    from webapp.delivery import queue
    from webapp.extensions import csrf, db, login_manager, mail, migrate
    from webapp.ingest import bp as ingest_bp
    from webapp.reports import init_app as init_reports
    from webapp.request_body import BodyGuard
    from webapp.retention import init_app as init_retention
    from webapp.sources import init_app as init_sources

    project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env.update(overrides or {})
    app = Flask(
        __name__,
        instance_path=env.get("FORMHOOKS_INSTANCE_PATH") or os.path.join(project_root, "instance"),
        template_folder=os.path.join(project_root, "templates"),
        static_folder=os.path.join(project_root, "static"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(load_config(env, app.instance_path))
    app.config["VERSION"] = __version__
    log_format.init_app(app)  # LOG_FORMAT=json

    app.extensions["formhooks.secret_box"] = SecretBox(
        app.config["ENCRYPTION_KEY"], app.config["SECRET_KEY"]
    )
    db.init_app(app)
    migrate.init_app(
        app, db, directory=os.path.join(project_root, "migrations"), render_as_batch=True
    )
    csrf.init_app(app)
    login_manager.init_app(app)
    mail.init_app(app)
    queue.init_app(app)
    init_i18n(app)  # Flask-Babel: admin pages and emails
    init_security(app)  # security headers, session lifetime
    _sqlite_pragmas(app)

    app.register_blueprint(ingest_bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    init_api(app)
    init_admin(app)
    tasks.init_app(app)  # the scheduler; delivery, sources, reports, retention declare jobs
    init_delivery(app)
    init_attachments(app)  # signed downloads and the panel's file route
    init_sources(app)
    init_reports(app)
    init_retention(app)  # SUBMISSION_RETENTION_DAYS, LOG_RETENTION_DAYS: job and CLI
    cli.init_app(app)
    app.wsgi_app = BodyGuard(app.wsgi_app, app.config["BODY_READ_TIMEOUT"])
    proxies.init_app(app)  # TRUSTED_PROXIES: X-Forwarded-* from nginx and the like
    return app


def _sqlite_pragmas(app: Flask) -> None:
    """WAL and a busy timeout, so web and workers can share one SQLite file."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    from webapp.extensions import db

    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
