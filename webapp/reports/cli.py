"""`flask --app webapp reports send` (docs/reports.md)."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

reports_cli = AppGroup("reports", help="Failure reports by email.")


@reports_cli.command("send")
def send_command() -> None:
    """Send the failure digests that are due now.

    Exits with status 1 when mail is not configured or an email could not be
    sent (those failures stay due for the next run).
    """
    from webapp.reports.sending import send_reports

    result = send_reports()
    click.echo(result.summary(), err=not result.ok)
    if not result.ok:
        sys.exit(1)
