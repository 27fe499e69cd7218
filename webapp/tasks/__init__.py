"""Background work: RQ job entry points run inside the app; the scheduler process.

- `run_in_app(func)`: what every RQ job entry point (delivery, reports) calls
  to run its work inside an application context.
- `schedule`: the periodic jobs, declared by the areas that own them
  (`declare_periodic`), kept registered in rq-scheduler by the Procfile's
  `scheduler` process (`flask --app webapp scheduler`), and the patch that
  makes rq-scheduler evaluate cron strings in UTC.

The jobs' modules are not imported here: each area registers its own (delivery
its sweeper, reports its digests), so delivery never imports reports. The
queue the scheduler feeds is delivery's (`webapp.delivery.queue`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, has_app_context

__all__ = ["init_app", "run_in_app"]

T = TypeVar("T")
_process_app: Flask | None = None


def run_in_app(func: Callable[[], T]) -> T:
    """Run `func` inside an application context and leave no session state behind.

    Uses the current app context when there is one (worker.py runs its RQ
    workers inside one); otherwise creates the app once per process and
    reuses it for every later job.
    """
    from webapp.extensions import db

    global _process_app
    if has_app_context():
        try:
            return func()
        finally:
            db.session.remove()
    if _process_app is None:
        from webapp import create_app

        _process_app = create_app()
    with _process_app.app_context():
        try:
            return func()
        finally:
            db.session.remove()


def init_app(app: Flask) -> None:
    """Add `flask scheduler`; make rq-scheduler evaluate cron strings in UTC."""
    from webapp.tasks.schedule import install_utc_cron, scheduler_cli

    app.cli.add_command(scheduler_cli)
    install_utc_cron()
