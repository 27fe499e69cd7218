"""Retention: deleting old submissions and old delivery attempts (docs/deploy.md, "Retention").

- `SUBMISSION_RETENTION_DAYS`: a submission whose every version is older
  than that, and that has no pending delivery, is deleted with its versions,
  delivery logs, attempts and files (submissions.py).
- `LOG_RETENTION_DAYS`: the attempts of a delivery log finished (success or
  failed) longer ago than that are deleted; the log stays (attempts.py).

Both unset (the default): nothing is deleted and no job is declared. Else
the periodic job `webapp.retention.jobs.run` runs every RUN_INTERVAL
seconds, in batches of one transaction each, up to a cap per run
(runs.py); `flask --app webapp retention run` runs it by hand. Each run is
recorded in `retention_runs`, and the dashboard shows the last one.
"""

from __future__ import annotations

from flask import Flask

#: Seconds between two runs of the periodic job.
RUN_INTERVAL = 3600


def retention_enabled(config) -> bool:
    return bool(config["SUBMISSION_RETENTION_DAYS"] or config["LOG_RETENTION_DAYS"])


def init_app(app: Flask) -> None:
    """Add `flask retention`; declare the periodic job when a retention is set."""
    from webapp.retention.cli import retention_cli
    from webapp.tasks.schedule import Periodic, declare_periodic

    app.cli.add_command(retention_cli)
    if retention_enabled(app.config):
        declare_periodic(
            app, Periodic("retention", "webapp.retention.jobs.run", interval=RUN_INTERVAL)
        )
