"""The periodic jobs: declared by their areas, kept registered by the scheduler."""

from __future__ import annotations

import pytest
from rq.job import Job

from webapp.delivery import queue as q
from webapp.tasks import run_in_app
from webapp.tasks.schedule import (
    FormhooksScheduler,
    Periodic,
    declare_periodic,
    periodic_jobs,
    register_periodic_jobs,
)


def test_each_area_declares_its_periodic_job(app):
    jobs = {job.name: job for job in periodic_jobs(app)}
    assert jobs["sweep"].func == "webapp.delivery.jobs.sweep"
    assert jobs["sweep"].interval == app.config["SWEEP_INTERVAL"]
    assert jobs["failure-report"].func == "webapp.reports.jobs.send_due_reports"
    assert jobs["failure-report"].cron == app.config["FAILURE_REPORT_CRON"]
    assert jobs["central-poll"].func == "webapp.sources.jobs.dispatch"
    assert jobs["central-poll"].interval == app.config["CENTRAL_POLL_INTERVAL"]
    assert len({job.job_id for job in jobs.values()}) == 3


def test_a_name_is_declared_once(app):
    with pytest.raises(ValueError, match="sweep"):
        declare_periodic(app, Periodic("sweep", "webapp.delivery.jobs.sweep", interval=5))
    assert len(periodic_jobs(app)) == 3


def test_start_up_cancels_jobs_no_longer_declared(app, make_app):
    with app.app_context():
        scheduler = q.scheduler()
        old_ids = register_periodic_jobs(app, scheduler)
        changed = make_app(SWEEP_INTERVAL="7")
        new_ids = register_periodic_jobs(changed, scheduler)
        held = {job.id for job in scheduler.get_jobs()}
        assert held == set(new_ids)
        [gone] = set(old_ids) - set(new_ids)
        assert "sweep" in gone
        assert not Job.exists(gone, connection=scheduler.connection)
        assert register_periodic_jobs(changed, scheduler) == new_ids  # idempotent


def test_the_scheduler_puts_back_jobs_that_redis_lost(app):
    with app.app_context():
        scheduler = FormhooksScheduler(
            app, queue_name=q.QUEUE_NAME, connection=q.redis_connection()
        )
        ids = register_periodic_jobs(app, scheduler)
        scheduler.connection.flushdb()  # a Redis restarted empty
        scheduler.enqueue_jobs()
        assert {job.id for job in scheduler.get_jobs()} == set(ids)


def test_run_in_app_uses_the_current_app_and_removes_the_session(app):
    from flask import current_app

    from webapp.extensions import db

    with app.app_context():
        session = db.session()
        assert run_in_app(lambda: current_app._get_current_object()) is app
        assert db.session() is not session  # the scoped session was removed
