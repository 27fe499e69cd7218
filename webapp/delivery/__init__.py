"""Delivery: payload building, the HTTP sender with its SSRF guard, jobs and retries."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Declare delivery's periodic job: the sweeper (README "Reliability")."""
    from webapp.tasks.schedule import Periodic, declare_periodic

    declare_periodic(
        app,
        Periodic("sweep", "webapp.delivery.jobs.sweep", interval=app.config["SWEEP_INTERVAL"]),
    )
