"""RQ entry point of the periodic retention run (declared in webapp/retention/__init__.py)."""

from __future__ import annotations

from webapp.tasks import run_in_app


def run() -> dict | None:
    """One capped run (see runs.run_retention); returns its counts, None when retention is off."""
    from webapp.retention.runs import run_retention

    def work() -> dict | None:
        run = run_retention("schedule")
        return run.as_dict() if run else None

    return run_in_app(work)
