"""The periodic jobs and the scheduler process that keeps them, in one place.

Each area declares its periodic jobs with `declare_periodic(app, Periodic(...))`
in its `init_app` (delivery: the sweeper; reports: the failure digests), so
this module imports no area. `flask --app webapp scheduler` (the Procfile's
`scheduler`) registers them in rq-scheduler under stable ids derived from
their definitions, cancels registered ones that are no longer declared, then
runs rq-scheduler, which moves due jobs (retries and periodic jobs) to the
queue every SCHEDULER_INTERVAL seconds (default 1 s, so a retry is late by at
most ~1 s).

Cron strings are UTC (`FAILURE_REPORT_CRON`, see README "Configuration").
rq-scheduler 0.14 computes a cron job's next run from the naive local
`datetime.now()`, so on a machine whose TZ is Europe/Paris `0 8 * * *` would
run at 08:00 Paris time, and at half past the hour on a +05:30 machine.
Upstream fixes are open (rq/rq-scheduler#300, #307, #324); until one is
released, `install_utc_cron()` replaces the one function rq-scheduler uses
for this, both when `Scheduler.cron()` registers a job and when it
reschedules it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
import rq_scheduler.scheduler as rq_scheduler_module
from croniter import croniter
from flask import Flask, current_app
from flask.cli import with_appcontext
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from webapp.delivery.queue import QUEUE_NAME, redis_connection
from webapp.models.base import utcnow

log = logging.getLogger(__name__)
PERIODIC_PREFIX = "fh-periodic-"
_EXTENSION = "formhooks.periodic"


@dataclass(frozen=True)
class Periodic:
    """A periodic RQ job: `func` (dotted path) every `interval` seconds, or at `cron` (UTC)."""

    name: str
    func: str
    interval: int | None = None  # seconds
    cron: str | None = None  # UTC

    @property
    def job_id(self) -> str:
        """Stable while the definition is: a changed interval or cron is a new job."""
        definition = f"{self.func}|{self.interval}|{self.cron}"
        return (
            f"{PERIODIC_PREFIX}{self.name}-{hashlib.sha256(definition.encode()).hexdigest()[:10]}"
        )


def declare_periodic(app: Flask, job: Periodic) -> None:
    """Declare a periodic job of `app` (called from an area's `init_app`)."""
    declared = app.extensions.setdefault(_EXTENSION, [])
    if any(other.name == job.name for other in declared):
        raise ValueError(f"periodic job {job.name!r} is declared twice")
    declared.append(job)


def periodic_jobs(app: Flask) -> list[Periodic]:
    """Every periodic job declared for `app`, in declaration order."""
    return list(app.extensions.get(_EXTENSION, []))


def register_periodic_jobs(app: Flask, scheduler: Scheduler) -> list[str]:
    """Make rq-scheduler hold exactly the declared periodic jobs. Returns their ids."""
    declared = {job.job_id: job for job in periodic_jobs(app)}
    registered = {job.id for job in scheduler.get_jobs() if job.id.startswith(PERIODIC_PREFIX)}
    for stale in registered - declared.keys():
        scheduler.cancel(stale)
        scheduler.connection.delete(f"rq:job:{stale}")
        log.info("Cancelled periodic job %s (no longer declared)", stale)
    for job_id, job in declared.items():
        if job_id in registered:
            continue
        if job.cron:
            scheduler.cron(job.cron, job.func, id=job_id, timeout=3600)
        else:
            scheduler.schedule(
                utcnow() + timedelta(seconds=1),
                job.func,
                interval=job.interval,
                id=job_id,
                timeout=3600,
            )
        log.info("Registered periodic job %s", job_id)
    return sorted(declared)


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


class FormhooksScheduler(Scheduler):
    """rq-scheduler that also keeps the periodic jobs registered.

    Before each poll it checks (one pipelined ZSCORE per periodic job) that
    the declared periodic jobs are still scheduled, so a Redis restarted
    empty gets them back at once, without restarting this process.
    """

    def __init__(self, app: Flask, **kwargs) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.periodic_ids = [job.job_id for job in periodic_jobs(app)]
        self.stopping = False  # set by a stop signal

    def _install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the process, whether Redis answers or not.

        rq-scheduler's own handler records the scheduler's death in Redis
        first: with Redis down that raised a RedisError, which the retry loop
        of `scheduler_cli` caught, so the process never stopped.
        """

        def stop(signum, frame):
            log.info("Shutting down the scheduler (signal %s)", signum)
            self.stopping = True
            with contextlib.suppress(RedisError):
                self.register_death()
                self.remove_lock()
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

    def enqueue_jobs(self):
        with self.connection.pipeline(transaction=False) as pipe:
            for job_id in self.periodic_ids:
                pipe.zscore(self.scheduled_jobs_key, job_id)
            if None in pipe.execute():
                register_periodic_jobs(self.app, self)
        return super().enqueue_jobs()


@click.command("scheduler")
@click.option("--burst", is_flag=True, help="Move due jobs once, then exit.")
@with_appcontext
def scheduler_cli(burst: bool) -> None:
    """Run rq-scheduler: retries at their due time, and the periodic jobs.

    Survives Redis outages: on a connection error it waits and starts again.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s scheduler %(levelname)s %(message)s"
    )
    app = current_app._get_current_object()
    interval = app.config["SCHEDULER_INTERVAL"]
    click.echo(f"Scheduler polling every {interval} s", err=True)
    while True:
        scheduler = FormhooksScheduler(
            app, queue_name=QUEUE_NAME, connection=redis_connection(), interval=interval
        )
        try:
            scheduler.run(burst=burst)
            return
        except RedisError as exc:
            if scheduler.stopping:
                # run()'s clean-up in `finally` raised this over the
                # SystemExit of the stop signal (Redis is down): stop anyway.
                raise SystemExit(0) from None
            log.warning("Redis unreachable (%s); trying again in 1 s", exc)
            time.sleep(1)
