"""RQ entry point of the periodic failure report (declared in reports/__init__.py)."""

from __future__ import annotations

from webapp.tasks import run_in_app


def send_due_reports() -> dict:
    """Send the failure digests due now (see sending.send_reports); returns what it did."""
    from webapp.reports.sending import send_reports

    return run_in_app(lambda: send_reports().as_dict())
