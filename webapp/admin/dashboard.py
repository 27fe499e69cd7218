"""The dashboard: deliveries lately, what needs attention, background processes, retention."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, render_template
from sqlalchemy import func, select

from webapp.admin import charts, queries
from webapp.admin.permissions import protect
from webapp.admin.status import queue_health
from webapp.admin.webforms import ConfirmForm
from webapp.delivery.queue import redis_connection
from webapp.extensions import db
from webapp.models import FAILED, Form, HookStatusCount
from webapp.models.base import utcnow
from webapp.retention import RUN_INTERVAL, retention_enabled
from webapp.retention.runs import last_run
from webapp.sources.status import sources_in_error

bp = Blueprint("dashboard", __name__)
protect(bp)

CHART_DAYS = 7


@bp.get("/")
def index():
    """Counts over 24 h and 7 days, failures and disabled hooks, process health."""
    now = utcnow()
    week_ago = now - timedelta(days=CHART_DAYS)
    hourly = queries.hourly_status_counts(week_ago)
    daily = queries.daily_status_counts(hourly)
    days = queries.days_back(now.date(), CHART_DAYS)
    return render_template(
        "dashboard/index.html",
        forms_count=db.session.scalar(select(func.count()).select_from(Form)),
        last_day=queries.status_counts_since(hourly, now - timedelta(hours=24)),
        week=queries.status_counts_since(hourly, week_ago),
        chart=charts.daily_bars(days, daily),
        failed_total=db.session.scalar(
            select(func.coalesce(func.sum(HookStatusCount.n), 0)).where(
                HookStatusCount.status == FAILED
            )
        ),
        failing=queries.failing_hooks(),
        disabled=queries.disabled_hooks(),
        source_errors=sources_in_error(),
        health=queue_health(redis_connection()),
        reports=_reports_panel(),
        retention=_retention_panel(),
        action_form=ConfirmForm(),
    )


def _retention_panel() -> dict:
    """The retention settings in effect and the last run (docs/admin.md, "Dashboard")."""
    config = current_app.config
    return {
        "enabled": retention_enabled(config),
        "submission_days": config["SUBMISSION_RETENTION_DAYS"],
        "log_days": config["LOG_RETENTION_DAYS"],
        "interval_minutes": RUN_INTERVAL // 60,
        "last_run": last_run(),
    }


def _reports_panel() -> dict:
    """The failure-report buttons and mail notice, if the reports module provides them."""
    views = current_app.view_functions
    status = None
    try:
        from webapp import reports

        mail_status = getattr(reports, "mail_status", None)
        status = mail_status(current_app._get_current_object()) if mail_status else None
    except Exception:  # the reports module is optional here; never break the dashboard
        current_app.logger.exception("webapp.reports.mail_status failed")
    return {
        "send_test": "reports.send_test_email" in views,
        "send_now": "reports.send_now" in views,
        "mail_status": status,
    }
