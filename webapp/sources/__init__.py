"""Pulling submissions from other servers (ODK Central): client, cursor, poll job.

Submissions enter through ingest's storing, never around it (entry.py); see
docs/central.md.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Declare the sources' periodic job: the poll dispatch (docs/central.md)."""
    from webapp.tasks.schedule import Periodic, declare_periodic

    declare_periodic(
        app,
        Periodic(
            "central-poll",
            "webapp.sources.jobs.dispatch",
            interval=app.config["CENTRAL_POLL_INTERVAL"],
        ),
    )
