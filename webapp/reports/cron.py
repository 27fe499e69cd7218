"""Cron expressions evaluated in UTC, whatever the machine's time zone.

SPEC §2 says `FAILURE_REPORT_CRON` is UTC. rq-scheduler 0.14 computes a cron
job's next run from the naive local `datetime.now()` (and `crontab` warns
about it), so on a machine whose TZ is Europe/Paris `0 8 * * *` would run at
08:00 Paris time, and at half past the hour on a +05:30 machine. Upstream
fixes are open (rq/rq-scheduler#300, #307, #324); until one is released,
`install_utc_cron()` replaces the one function rq-scheduler uses for this,
both when `Scheduler.cron()` registers a job and when it reschedules it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import rq_scheduler.scheduler as rq_scheduler_module
from croniter import croniter

from webapp.models.base import utcnow


def next_cron_time(cron: str, now: datetime | None = None) -> datetime:
    """The first time strictly after `now` (aware; default: now) matching `cron` in UTC.

    Returns an aware UTC datetime.
    """
    start = (now or utcnow()).astimezone(UTC)
    return croniter(cron, start).get_next(datetime).astimezone(UTC)


def _next_scheduled_time(cron_string: str, use_local_timezone: bool = False) -> datetime:
    """rq-scheduler's `get_next_scheduled_time`, in UTC (Formhooks never asks for local)."""
    return next_cron_time(cron_string)


def install_utc_cron() -> None:
    """Make rq-scheduler evaluate every cron string in UTC. Idempotent."""
    rq_scheduler_module.get_next_scheduled_time = _next_scheduled_time
