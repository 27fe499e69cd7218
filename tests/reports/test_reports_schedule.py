"""The periodic report job: declared once with a stable id, cron in UTC, run by RQ."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from rq import SimpleWorker

from webapp.delivery import queue as q
from webapp.models.base import utcnow
from webapp.tasks.schedule import next_cron_time, periodic_jobs, register_periodic_jobs

FUNC = "webapp.reports.jobs.send_due_reports"


@pytest.fixture
def machine_in_india():
    """The process's local time zone is +05:30 (half an hour off any UTC hour)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    yield
    if previous is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = previous
    time.tzset()


def report_job(app):
    [job] = [j for j in periodic_jobs(app) if j.func == FUNC]
    return job


def test_the_report_job_is_declared_with_a_stable_id(app, make_app):
    job = report_job(app)
    assert (job.name, job.cron, job.interval) == ("failure-report", "0 * * * *", None)
    assert report_job(make_app()).job_id == job.job_id
    assert report_job(make_app(FAILURE_REPORT_CRON="30 6 * * *")).job_id != job.job_id


def test_next_cron_time_is_utc_and_strictly_after_now():
    at_ten = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert next_cron_time("0 * * * *", at_ten) == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)
    paris_noon = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert next_cron_time("0 12 * * *", paris_noon) == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_cron_runs_in_utc_whatever_the_machine_tz(machine_in_india, app, make_app, smtp, failures):
    assert datetime.now().minute != utcnow().minute or datetime.now().hour != utcnow().hour
    failures.user("alice@example.org")
    form = failures.form("Survey", "alice@example.org")
    failures.failed(failures.hook(form, "CRM"), "uuid:1")
    cron = "15 3 * * *"
    scheduled = make_app(FAILURE_REPORT_CRON=cron)
    with scheduled.app_context():
        scheduler = q.scheduler()
        expected = next_cron_time(cron)
        register_periodic_jobs(scheduled, scheduler)
        job_id = report_job(scheduled).job_id
        # The other periodic jobs (first due 1 s after registering) far off,
        # so that only the report is due below however slowly this runs.
        for other in scheduler.get_jobs():
            if other.id != job_id:
                scheduler.change_execution_time(other, datetime(2100, 1, 1))
        when = dict((job.id, t) for job, t in scheduler.get_jobs(with_times=True))[job_id]
        assert when.replace(tzinfo=UTC) == expected  # rq-scheduler keeps naive UTC
        assert (expected.hour, expected.minute) == (3, 15)
        # Make it due, let rq-scheduler queue it and reschedule it, run it with RQ.
        job = scheduler.job_class.fetch(job_id, connection=scheduler.connection)
        scheduler.change_execution_time(job, (utcnow() - timedelta(seconds=1)).replace(tzinfo=None))
        scheduler.enqueue_jobs()
        assert q.delivery_queue().job_ids == [job_id]
        when = dict((job.id, t) for job, t in scheduler.get_jobs(with_times=True))[job_id]
        assert when.replace(tzinfo=UTC) == next_cron_time(cron)
        connection = q.redis_connection()
        SimpleWorker([q.delivery_queue(connection)], connection=connection).work(burst=True)
        ran = scheduler.job_class.fetch(job_id, connection=connection)
        assert ran.return_value()["emails"] == 1
    [received] = smtp.messages
    assert received.rcpt_tos == ["alice@example.org"]
