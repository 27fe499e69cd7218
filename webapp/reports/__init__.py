"""Failure reports by email (docs/reports.md).

For hooks with `email_notification` on, each final failure is emailed once,
in one digest per recipient, by `flask reports send`, by the periodic job
`webapp.reports.jobs.send_due_reports` (FAILURE_REPORT_CRON, UTC) and by the
admin's "send the report now".
"""

from __future__ import annotations

import logging

from flask import Flask

from webapp.reports.mailer import mail_status

__all__ = ["init_app", "mail_status"]

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Register the `reports` CLI group, admin actions and periodic job; warn without mail."""
    from webapp.reports import views
    from webapp.reports.cli import reports_cli
    from webapp.tasks.schedule import Periodic, declare_periodic

    app.cli.add_command(reports_cli)
    app.register_blueprint(views.bp)
    declare_periodic(
        app,
        Periodic(
            "failure-report",
            "webapp.reports.jobs.send_due_reports",
            cron=app.config["FAILURE_REPORT_CRON"],
        ),
    )
    if not app.config["MAIL_CONFIGURED"]:
        log.warning(
            "Mail is not configured (MAIL_SERVER is unset): failure reports will not be "
            "sent, and stay due until it is."
        )
